package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/translate"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/xds"
)

// TestDebugAPIAndCSDSNeedKubernetesRBAC runs wardend with --debug-auth=kubernetes
// against a real API server with deploy/ applied: the debug API is HTTPS and answers
// only tokens that TokenReview accepts and whose user RBAC lets get warden.io/debug
// (ClusterRole warden-debug-reader); metrics need nothing and hold no secrets; over
// CSDS a proxy's token sees only its own node and an operator's the fleet.
func TestDebugAPIAndCSDSNeedKubernetesRBAC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	work := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	p := begin(t, "start the API server, apply deploy/, start wardend with --debug-auth=kubernetes")
	bin, err := harness.FindBinaries(ctx, filepath.Join(work, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := kubeenv.Start(ctx, kubeenv.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	if err := env.ApplyFiles(ctx, filepath.Join(repoRoot(t), "deploy")); err != nil {
		t.Fatal(err)
	}
	kc, err := env.ServiceAccountKubeconfig(ctx, kubeenv.WardendNamespace, kubeenv.WardendServiceAccount, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wardendKC := filepath.Join(work, "wardend.kubeconfig")
	if err := os.WriteFile(wardendKC, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	w := startWardend(t, ctx, bin.Wardend, wardendKC, work, "--debug-auth=kubernetes")
	rootPEM, err := env.MeshRootPEM(ctx, kubeenv.WardendNamespace)
	if err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(work, "root.pem")
	if err := os.WriteFile(rootFile, rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	// Refusals are logged a few lines a second per source: requests whose log lines the
	// test looks for come from sources of their own (all of 127/8 is loopback).
	debug, debugFrom2 := newDebugAPI(w.debugAddr, roots, "127.0.0.1"), newDebugAPI(w.debugAddr, roots, "127.0.0.2")
	p.end()

	p = begin(t, "two proxies connect with pod-bound tokens; operators get service-account tokens")
	proxyTokens := map[string]string{}
	for i, name := range []string{"web", "db"} {
		pod, err := env.WritePod(ctx, kubeenv.Pod{Namespace: "demo", Name: name + "-0", IP: fmt.Sprintf("10.250.1.%d", i+1),
			ServiceAccount: name, Labels: map[string]string{"app": name}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := env.Token(ctx, "demo", name, []string{kubeenv.ProxyTokenAudience}, pod, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		proxyTokens[name] = tok
		connectProxy(t, ctx, w.xdsAddr, roots, tok, xds.Identity{Namespace: "demo", ServiceAccount: name, Pod: name + "-0"})
	}
	if err := env.EnsureNamespace(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	opsToken := map[string]string{}
	for _, sa := range []string{"reader", "nobody"} {
		_, err := env.Client.CoreV1().ServiceAccounts("ops").Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: sa}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		if opsToken[sa], err = env.Token(ctx, "ops", sa, nil, nil, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	p.end()

	p = begin(t, "no token, a garbage token, a token without RBAC")
	for _, path := range []string{"/debug/syncz", "/debug/config_dump?proxy=web-0.demo", "/debug/pprof/heap"} {
		code, body := debug.get(t, ctx, path, "")
		if code != http.StatusUnauthorized {
			t.Fatalf("GET %s without a token: %d %s, want 401", path, code, body)
		}
		if strings.Contains(body, "web-0") || strings.Contains(body, "resources") || strings.Contains(body, "proxies") {
			t.Fatalf("GET %s without a token: the body shows configuration: %s", path, body)
		}
	}
	if code, body := debug.get(t, ctx, "/debug/syncz", "garbage."+opsToken["reader"][:20]); code != http.StatusUnauthorized {
		t.Fatalf("GET /debug/syncz with a garbage token: %d %s, want 401", code, body)
	}
	if code, body := debugFrom2.get(t, ctx, "/debug/syncz", opsToken["reader"]); code != http.StatusForbidden {
		t.Fatalf("GET /debug/syncz as ops/reader before any binding: %d %s, want 403", code, body)
	}
	if _, err := csdsNodes(ctx, w.xdsAddr, roots, opsToken["reader"]); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("CSDS as ops/reader before any binding: %v, want PermissionDenied", err)
	}
	p.end()

	p = begin(t, "bind warden-debug-reader to ops/reader: 200, and wardenctl status over HTTPS")
	_, err = env.Client.RbacV1().RoleBindings(kubeenv.WardendNamespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: kubeenv.WardendNamespace, Name: "ops-reader-debug"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "warden-debug-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "ops", Name: "reader"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 30*time.Second, "the RoleBinding to let ops/reader read /debug/syncz", func() error {
		code, body := debug.get(t, ctx, "/debug/syncz", opsToken["reader"])
		if code != http.StatusOK {
			return &statusErr{code, body}
		}
		var r xds.SynczResponse
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return err
		}
		for _, id := range []string{"web-0.demo", "db-0.demo"} {
			if _, ok := proxyStatus(r, id); !ok {
				return &statusErr{code, "syncz lacks " + id + ": " + body}
			}
		}
		return nil
	})
	if code, body := debug.get(t, ctx, "/debug/config_dump?proxy=web-0.demo", opsToken["reader"]); code != http.StatusOK ||
		!strings.Contains(body, `"resources"`) {
		t.Fatalf("GET /debug/config_dump as ops/reader: %d %s, want 200 with web-0's resources", code, body)
	}
	// The proxy's own token is reviewed (audience warden), but its account is not bound.
	if code, body := debug.get(t, ctx, "/debug/config_dump?proxy=db-0.demo", proxyTokens["web"]); code != http.StatusForbidden {
		t.Fatalf("GET db-0's config_dump with web-0's pod-bound token: %d %s, want 403", code, body)
	}
	readerKC := filepath.Join(work, "reader.kubeconfig")
	nobodyKC := filepath.Join(work, "nobody.kubeconfig")
	for file, tok := range map[string]string{readerKC: opsToken["reader"], nobodyKC: opsToken["nobody"]} {
		data, err := env.Kubeconfig(tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.CommandContext(ctx, bin.Wardenctl, "status", "--server", debug.base, "--kubeconfig", readerKC,
		"--ca-file", rootFile, "-o", "json").Output()
	if err != nil {
		t.Fatalf("wardenctl status over HTTPS as ops/reader: %v\n%s%s", err, out, stderrOf(err))
	}
	var rows []struct {
		Name, Namespace string
	}
	if err := json.Unmarshal(out, &rows); err != nil || len(rows) != 2 {
		t.Fatalf("wardenctl status -o json: %v, %d rows, want web-0 and db-0:\n%s", err, len(rows), out)
	}
	out, err = exec.CommandContext(ctx, bin.Wardenctl, "status", "--server", debug.base, "--kubeconfig", nobodyKC,
		"--ca-file", rootFile).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "403") {
		t.Fatalf("wardenctl status as ops/nobody: %v\n%s, want wardend's 403", err, out)
	}
	p.end()

	p = begin(t, "CSDS: a proxy sees itself, an operator the fleet")
	for name, want := range map[string]string{"web": "web-0.demo", "db": "db-0.demo"} {
		nodes, err := csdsNodes(ctx, w.xdsAddr, roots, proxyTokens[name])
		if err != nil {
			t.Fatalf("CSDS with %s-0's token: %v", name, err)
		}
		if len(nodes) != 1 || nodes[0] != want {
			t.Fatalf("CSDS with %s-0's token lists %v, want exactly [%s]", name, nodes, want)
		}
	}
	nodes, err := csdsNodes(ctx, w.xdsAddr, roots, opsToken["reader"])
	if err != nil {
		t.Fatalf("CSDS as ops/reader: %v", err)
	}
	if len(nodes) != 2 || nodes[0] != "db-0.demo" || nodes[1] != "web-0.demo" {
		t.Fatalf("CSDS as ops/reader lists %v, want the fleet [db-0.demo web-0.demo]", nodes)
	}
	if _, err := csdsNodes(ctx, w.xdsAddr, roots, opsToken["nobody"]); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("CSDS as ops/nobody: %v, want PermissionDenied", err)
	}
	if _, err := csdsNodes(ctx, w.xdsAddr, roots, "garbage"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("CSDS with a garbage token: %v, want Unauthenticated", err)
	}
	p.end()

	p = begin(t, "metrics need no credential and hold no secrets; refusals are logged")
	body, err := httpGet(ctx, "http://"+w.metrics+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "warden_xds_connected_proxies 2") {
		t.Fatalf("/metrics lacks warden_xds_connected_proxies 2:\n%.2000s", body)
	}
	secrets := []string{"-----BEGIN", "PRIVATE KEY", "Bearer", proxyTokens["web"], opsToken["reader"]}
	for _, s := range secrets {
		if strings.Contains(string(body), s) {
			t.Fatalf("/metrics contains %.40q", s)
		}
	}
	if _, err := httpGet(ctx, "http://"+w.metrics+"/debug/syncz"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("/debug/syncz on the metrics address: %v, want 404", err)
	}
	logText := w.tail(2000)
	for _, want := range []string{"debug API request refused", "status=401", "status=403", "CSDS request refused"} {
		if !strings.Contains(logText, want) {
			t.Fatalf("wardend's log lacks %q", want)
		}
	}
	for _, s := range secrets[3:] {
		if strings.Contains(logText, s) {
			t.Fatal("wardend logged a token")
		}
	}
	p.end()
}

type debugAPI struct {
	base   string
	client *http.Client
}

// newDebugAPI is an HTTPS client of wardend's debug API at addr, connecting from source.
func newDebugAPI(addr string, roots *x509.CertPool, source string) *debugAPI {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	return &debugAPI{base: "https://" + addr, client: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: dialer.DialContext, TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "wardend"}}}}
}

// get returns the status code and body of GET path with token (none when empty).
func (d *debugAPI) get(t *testing.T, ctx context.Context, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := d.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

type statusErr struct {
	code int
	body string
}

func (e *statusErr) Error() string { return http.StatusText(e.code) + ": " + e.body }

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func xdsConn(t *testing.T, addr string, roots *x509.CertPool) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "wardend"})))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// connectProxy opens an ADS stream as id with token, as a sidecar would, waits for
// its first response and keeps the stream open until the test ends.
func connectProxy(t *testing.T, ctx context.Context, addr string, roots *x509.CertPool, token string, id xds.Identity) {
	t.Helper()
	conn := xdsConn(t, addr, roots)
	sctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token))
	t.Cleanup(func() { cancel(); conn.Close() })
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(sctx)
	if err != nil {
		t.Fatal(err)
	}
	md, err := xds.NodeMetadata(id, nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: id.NodeID(), Metadata: md},
		TypeUrl: resource.SecretType, ResourceNames: []string{translate.SecretDefault, translate.SecretRootCA}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("proxy %s: first xDS response: %v", id.NodeID(), err)
	}
}

// csdsNodes asks CSDS on wardend's xDS port with token and returns the node ids listed.
// It connects from 127.0.0.3, a source of its own (see newDebugAPI).
func csdsNodes(ctx context.Context, addr string, roots *x509.CertPool, token string) ([]string, error) {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "wardend"})),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", a) }))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), 10*time.Second)
	defer cancel()
	resp, err := statusv3.NewClientStatusDiscoveryServiceClient(conn).FetchClientStatus(ctx, &statusv3.ClientStatusRequest{})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range resp.GetConfig() {
		ids = append(ids, c.GetNode().GetId())
	}
	sort.Strings(ids)
	return ids, nil
}
