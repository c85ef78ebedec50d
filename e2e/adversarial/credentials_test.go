package adversarial

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/xds"
)

// credential is one gateway Secret's material, made for the test.
type credential struct {
	name, namespace string
	certPEM, keyPEM string
}

// newCredential signs a self-signed P-256 certificate for host.
func newCredential(t *testing.T, namespace, name, host string) credential {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return credential{name: name, namespace: namespace,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))}
}

// secretYAML is the credential as a kubernetes.io/tls Secret manifest.
func (c credential) secretYAML() string {
	indent := func(s string) string { return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ") }
	return "apiVersion: v1\nkind: Secret\nmetadata: {name: " + c.name + ", namespace: " + c.namespace + "}\n" +
		"type: kubernetes.io/tls\nstringData:\n  tls.crt: |\n" + indent(c.certPEM) + "\n  tls.key: |\n" + indent(c.keyPEM) + "\n"
}

// keyTraces are substrings that only this credential's private key produces: a run of
// the PEM body (the DER's private scalar), and the same run of the base64 a JSON dump
// of the PEM bytes would hold.
func (c credential) keyTraces() []string {
	body := strings.Split(c.keyPEM, "\n")[1]
	b64 := base64.StdEncoding.EncodeToString([]byte(c.keyPEM))
	return []string{body[10:50], b64[40:90]}
}

// gatewaysMesh has two ingress gateways of two namespaces, each with its own
// credential, a Gateway in team-b whose server names istio-system's credential, a
// sidecar pod in istio-system (no gateway label) and a Gateway of istio-system with
// an empty selector (it selects every gateway) naming istio-system's credential.
func gatewaysMesh(a, b credential) string {
	return mesh + `---
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: v1
kind: Pod
metadata: {name: ingress-0, namespace: istio-system, labels: {istio: ingressgateway}}
spec:
  serviceAccountName: ingress
  containers: [{name: istio-proxy, image: envoy, ports: [{name: https, containerPort: 443}]}]
status: {podIP: 10.9.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: gw-b-0, namespace: team-b, labels: {istio: team-b-gateway}, annotations: {inject.istio.io/templates: gateway}}
spec:
  serviceAccountName: gw-b
  containers: [{name: istio-proxy, image: envoy, ports: [{name: https, containerPort: 443}]}]
status: {podIP: 10.9.1.3}
---
apiVersion: v1
kind: Pod
metadata: {name: intruder-0, namespace: istio-system, labels: {app: intruder}}
spec:
  serviceAccountName: intruder
  containers: [{name: app, image: app, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 10.9.1.4}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: every-gateway, namespace: istio-system}
spec:
  servers:
  - port: {number: 8443, name: https-any, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: ` + a.name + `}
---
` + a.secretYAML() + `---
` + b.secretYAML() + `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-a, protocol: HTTPS}
    hosts: ["a.example.com"]
    tls: {mode: SIMPLE, credentialName: ` + a.name + `}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: b-gw, namespace: team-b}
spec:
  selector: {istio: team-b-gateway}
  servers:
  - port: {number: 443, name: https-b, protocol: HTTPS}
    hosts: ["b.example.com"]
    tls: {mode: SIMPLE, credentialName: ` + b.name + `}
  - port: {number: 443, name: https-steal, protocol: HTTPS}
    hosts: ["steal.example.com"]
    tls: {mode: SIMPLE, credentialName: ` + a.name + `}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: ["a.example.com", "b.example.com", "steal.example.com"]
  gateways: ["istio-system/public", "team-b/b-gw"]
  http:
  - route: [{destination: {host: web.shop.svc.cluster.local, port: {number: 80}}}]
`
}

var (
	// intruder is a sidecar pod of the gateway Secrets' own namespace.
	intruder = xds.Identity{Namespace: "istio-system", ServiceAccount: "intruder", Pod: "intruder-0"}
	ingressA = xds.Identity{Namespace: "istio-system", ServiceAccount: "ingress", Pod: "ingress-0"}
	gatewayB = xds.Identity{Namespace: "team-b", ServiceAccount: "gw-b", Pod: "gw-b-0"}
)

// proxyNode is the node message of ident, claiming to be a gateway or a sidecar.
func proxyNode(t *testing.T, ident xds.Identity, gateway bool) *core.Node {
	t.Helper()
	md, err := xds.NodeMetadata(ident, nil, nil, gateway)
	if err != nil {
		t.Fatal(err)
	}
	return &core.Node{Id: ident.NodeID(), Metadata: md}
}

// servedCredentials is what the client received over SDS, by name: the private key of
// each TLS certificate secret (empty for validation contexts).
func (cl *client) servedCredentials(t *testing.T) map[string]string {
	t.Helper()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	out := map[string]string{}
	for _, a := range cl.served {
		if a.GetTypeUrl() != resource.SecretType {
			continue
		}
		s := &tlsv3.Secret{}
		if err := a.UnmarshalTo(s); err != nil {
			t.Fatal(err)
		}
		out[s.GetName()] = string(s.GetTlsCertificate().GetPrivateKey().GetInlineBytes())
	}
	return out
}

// allServedBytes is every resource the client received, serialized, for a search of
// key material in any field.
func (cl *client) allServedBytes() string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var b strings.Builder
	for _, a := range cl.served {
		b.Write(a.GetValue())
	}
	return b.String()
}

// askCredentials opens a stream as ident (a gateway or a sidecar by its node
// metadata) and asks SDS by name for its own SVID and both gateway credentials, as a
// process holding ident's credential could; it returns the stream after the answer.
func askCredentials(t *testing.T, w *wardend, ident xds.Identity, gateway, delta bool, names ...string) *client {
	t.Helper()
	cl := w.open(t, w.conn(t), w.token(t, ident, time.Hour), delta)
	all := append([]string{translate.SecretDefault, translate.SecretRootCA}, names...)
	if err := cl.request(proxyNode(t, ident, gateway), resource.SecretType, all...); err != nil {
		t.Fatal(err)
	}
	if err := cl.waitResponse(15 * time.Second); err != nil {
		t.Fatalf("%s: %v", ident, err)
	}
	// A later request on the same stream (LDS) is answered after the SDS one: by then
	// every SDS answer to the first request was received.
	if err := cl.request(nil, resource.ListenerType); err != nil {
		t.Fatal(err)
	}
	if err := cl.waitResponse(15 * time.Second); err != nil {
		t.Fatalf("%s: LDS: %v", ident, err)
	}
	return cl
}

// TestGatewayCredentialsStayInTheirNamespace: a gateway credential (credentialName,
// SDS kubernetes://<name>) is served only to a gateway of the Secret's own namespace,
// the namespace its proven identity names. A gateway of another namespace gets
// nothing for it, whether its own Gateway object names the credential or it asks SDS
// by name; a sidecar gets nothing, whether it says it is a sidecar or claims to be a
// gateway (node metadata WARDEN_PROXY_TYPE), in another namespace or in the Secret's
// own, where a Gateway with an empty selector would select it were the claim
// believed: the role is its Pod object's (label istio: ingressgateway). The key never appears in wardend's log, its debug API or wardenctl's output.
func TestGatewayCredentialsStayInTheirNamespace(t *testing.T) {
	a := newCredential(t, "istio-system", "ingress-cred", "a.example.com")
	b := newCredential(t, "team-b", "b-cred", "b.example.com")
	w := startWardend(t, gatewaysMesh(a, b))
	sdsA, sdsB := "kubernetes://"+a.name, "kubernetes://"+b.name
	noKey := func(t *testing.T, where, text string, creds ...credential) {
		t.Helper()
		for _, c := range creds {
			for _, tr := range c.keyTraces() {
				if strings.Contains(text, tr) {
					t.Errorf("%s holds %s/%s's private key", where, c.namespace, c.name)
				}
			}
		}
	}

	for _, delta := range []bool{false, true} {
		t.Run(proto(delta)+"/own gateway gets its credential", func(t *testing.T) {
			cl := askCredentials(t, w, ingressA, true, delta, sdsA, sdsB)
			got := cl.servedCredentials(t)
			if got[sdsA] != a.keyPEM {
				t.Fatalf("istio-system's gateway was not served %s (the test proves nothing): served %v", sdsA, keys(got))
			}
			if _, ok := got[sdsB]; ok {
				t.Errorf("istio-system's gateway was served team-b's %s", sdsB)
			}
			noKey(t, "what istio-system's gateway was served", cl.allServedBytes(), b)
		})
		t.Run(proto(delta)+"/gateway of another namespace is refused", func(t *testing.T) {
			cl := askCredentials(t, w, gatewayB, true, delta, sdsB, sdsA)
			got := cl.servedCredentials(t)
			if got[sdsB] != b.keyPEM {
				t.Fatalf("team-b's gateway was not served its own %s (the test proves nothing): served %v", sdsB, keys(got))
			}
			if _, ok := got[sdsA]; ok {
				t.Errorf("team-b's gateway, whose Gateway b-gw names %s, was served istio-system's credential", a.name)
			}
			noKey(t, "what team-b's gateway was served", cl.allServedBytes(), a)
		})
		for _, sidecar := range []xds.Identity{web, intruder} {
			for _, claimGateway := range []bool{false, true} {
				name := "/sidecar " + sidecar.Pod + "." + sidecar.Namespace + " gets no credential"
				if claimGateway {
					name = "/sidecar " + sidecar.Pod + "." + sidecar.Namespace + " claiming to be a gateway gets no credential"
				}
				t.Run(proto(delta)+name, func(t *testing.T) {
					cl := askCredentials(t, w, sidecar, claimGateway, delta, sdsA, sdsB, "kubernetes://shop/"+a.name)
					got := cl.servedCredentials(t)
					for n := range got {
						if strings.HasPrefix(n, "kubernetes://") {
							t.Errorf("%s's stream was served %s", sidecar.Pod, n)
						}
					}
					if got[translate.SecretDefault] == "" {
						t.Fatalf("%s was not served its own certificate (the test proves nothing): served %v", sidecar.Pod, keys(got))
					}
					// Served as a sidecar: no Gateway server chain (which names the credential's
					// SDS name) in its listeners, nor anywhere else.
					if b := cl.allServedBytes(); strings.Contains(b, sdsA) || strings.Contains(b, sdsB) {
						t.Errorf("what %s was served names a gateway credential", sidecar.Pod)
					}
					noKey(t, "what "+sidecar.Pod+" was served", cl.allServedBytes(), a, b)
				})
			}
		}
	}

	// Nothing that shows the configuration shows the keys: the log, every debug
	// endpoint (config_dump of each proxy, which names the secrets), and wardenctl.
	t.Run("no key in logs, debug API or wardenctl", func(t *testing.T) {
		// Both gateways connected (config_dump shows connected proxies only).
		if gw := askCredentials(t, w, ingressA, true, false, sdsA, sdsB); gw.servedCredentials(t)[sdsA] == "" {
			t.Fatal("istio-system's gateway was not served its credential")
		}
		if gb := askCredentials(t, w, gatewayB, true, false, sdsA, sdsB); gb.servedCredentials(t)[sdsB] == "" {
			t.Fatal("team-b's gateway was not served its credential")
		}
		paths := []string{"/debug/syncz", "/debug/inputz", "/debug/mtlsz", "/metrics",
			"/debug/describe?pod=" + url.QueryEscape("ingress-0.istio-system"),
			"/debug/describe?pod=" + url.QueryEscape("gw-b-0.team-b"),
			"/debug/config_dump?proxy=" + url.QueryEscape(ingressA.NodeID()),
			"/debug/config_dump?proxy=" + url.QueryEscape(gatewayB.NodeID())}
		for _, p := range paths {
			body := w.get(t, p)
			noKey(t, p, body, a, b)
			if strings.HasPrefix(p, "/debug/config_dump?proxy="+url.QueryEscape(ingressA.NodeID())) && !strings.Contains(body, sdsA) {
				t.Errorf("%s does not name %s: the check sees the wrong dump", p, sdsA)
			}
		}
		bin := binaries(t).Wardenctl
		for _, args := range [][]string{
			{"status", "--server", w.debugAddr},
			{"status", "ingress-0.istio-system", "--server", w.debugAddr},
			{"describe", "ingress-0.istio-system", "--server", w.debugAddr},
			{"describe", "gw-b-0.team-b", "--server", w.debugAddr},
			{"analyze", "--server", w.debugAddr},
			{"analyze", "-o", "json", "--server", w.debugAddr},
			{"analyze", "-f", w.configDir},
			{"mtls", "-A", "--server", w.debugAddr},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput() // some exit 1 on findings
			cancel()
			if len(out) == 0 {
				t.Errorf("wardenctl %v printed nothing", args)
			}
			noKey(t, "wardenctl "+strings.Join(args, " "), string(out), a, b)
		}
		noKey(t, "wardend's log", w.log(t), a, b)
	})
}

// get reads one path of wardend's debug API.
func (w *wardend) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + w.debugAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%s: %s: %s", path, resp.Status, b)
	}
	return string(b)
}
