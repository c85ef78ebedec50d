package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/xds"
)

// tlsWardend is an exposed debug API: HTTPS with a certificate from the mesh CA for
// namespace/serviceAccount, answering /debug/syncz to requests with the bearer token
// "good" and recording every Authorization header it gets.
type tlsWardend struct {
	url, rootFile string
	mu            sync.Mutex
	auth          []string
}

func startTLSWardend(t *testing.T, namespace, serviceAccount string) *tlsWardend {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.LoadOrCreateCA(dir, "cluster.local", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := certs.WorkloadID(ca.TrustDomain(), namespace, serviceAccount)
	if err != nil {
		t.Fatal(err)
	}
	serving := &xds.ServingCert{CA: ca, ID: id, TTL: time.Hour, DNS: []string{"wardend"}}
	w := &tlsWardend{rootFile: filepath.Join(dir, "root.pem")}
	if err := os.WriteFile(w.rootFile, ca.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.auth = append(w.auth, r.Header.Get("Authorization"))
		w.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer good" {
			http.Error(rw, "Unauthorized: not authenticated", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(rw).Encode(xds.SynczResponse{Wardend: "tls-replica",
			Proxies: []xds.ProxyStatus{proxyOn("web-0", "tls-replica", time.Now(), xds.StatusSynced)}})
	}))
	cert, err := serving.Get()
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests want
	srv.StartTLS()
	t.Cleanup(srv.Close)
	w.url = srv.URL // https://127.0.0.1:PORT: not a name in the certificate; the SPIFFE ID is what is checked
	return w
}

func (w *tlsWardend) headers() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.auth...)
}

func writeKubeconfig(t *testing.T, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStatusOverHTTPSSendsTheToken(t *testing.T) {
	w := startTLSWardend(t, "warden-system", "wardend")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("good\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, cred := range map[string][]string{
		"kubeconfig": {"--kubeconfig", writeKubeconfig(t, "good")},
		"token":      {"--token", "good"},
		"token file": {"--token-file", tokenFile},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := runWardenctl(t, append([]string{"status", "--server", w.url, "--ca-file", w.rootFile, "-o", "json"}, cred...)...)
			if err != nil {
				t.Fatalf("wardenctl status over https with %s: %v\n%s", name, err, out)
			}
			if !strings.Contains(out, `"web-0"`) {
				t.Fatalf("status output lacks the proxy: %s", out)
			}
		})
	}
	if _, err := runWardenctl(t, "status", "--server", w.url, "--ca-file", w.rootFile, "--token", "bad"); err == nil ||
		!strings.Contains(err.Error(), "401") {
		t.Fatalf("a bad token: %v, want wardend's 401", err)
	}
	if _, err := runWardenctl(t, "status", "--server", w.url, "--ca-file", w.rootFile); err == nil ||
		!strings.Contains(err.Error(), "needs a credential") {
		t.Fatalf("https without a credential: %v, want a request for one", err)
	}
}

func TestHTTPSVerifiesWardendsIdentity(t *testing.T) {
	impostor := startTLSWardend(t, "shop", "web") // the mesh CA signed it, but it is not wardend
	_, err := runWardenctl(t, "status", "--server", impostor.url, "--ca-file", impostor.rootFile, "--token", "good")
	if err == nil || !strings.Contains(err.Error(), "not wardend's") {
		t.Fatalf("a mesh workload posing as wardend: %v, want a refusal naming its identity", err)
	}
	other := startTLSWardend(t, "warden-system", "wardend") // another mesh's root
	_, err = runWardenctl(t, "status", "--server", impostor.url, "--ca-file", other.rootFile, "--token", "good")
	if err == nil || !strings.Contains(err.Error(), "cannot reach wardend") {
		t.Fatalf("a certificate of another mesh's root: %v, want a TLS failure", err)
	}
	for _, w := range []*tlsWardend{impostor, other} {
		for _, h := range w.headers() {
			if h != "" {
				t.Fatalf("the token reached an unverified server: %q", h)
			}
		}
	}
}

func TestPlainServerNeverGetsAToken(t *testing.T) {
	var mu sync.Mutex
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(xds.SynczResponse{Wardend: "plain"})
	}))
	t.Cleanup(srv.Close)
	plain := strings.TrimPrefix(srv.URL, "http://")
	if _, err := runWardenctl(t, "status", "--server", plain); err != nil {
		t.Fatalf("plain host:port: %v", err)
	}
	for _, s := range []string{plain, srv.URL} {
		_, err := runWardenctl(t, "status", "--server", s, "--token", "secret")
		if err == nil || !strings.Contains(err.Error(), "plaintext") {
			t.Fatalf("--token with --server %s: %v, want a refusal to send it over plaintext", s, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) != 1 || auth[0] != "" {
		t.Fatalf("plain server saw Authorization headers %q, want one request without", auth)
	}
}
