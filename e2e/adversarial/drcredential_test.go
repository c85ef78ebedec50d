package adversarial

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/xds"
)

// drCredentialMesh adds to mesh: an external host with a DestinationRule (MUTUAL,
// credentialName web-client) that applies only to app=web in shop; a namespace
// partner with its own proxy, DestinationRule and Secrets, one of which has the same
// name as shop's (with another certificate); and a Secret of shop that no rule names.
func drCredentialMesh(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "scenarios", "gateway-tls-testdata")
	b64 := func(f string) string {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(data)
	}
	secret := func(ns, name, cert, key string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: " + name + ", namespace: " + ns + "}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: " +
			b64(cert) + "\n  tls.key: " + b64(key) + "\n  ca.crt: " + b64("ca.crt") + "\n"
	}
	return mesh + `---
apiVersion: v1
kind: Namespace
metadata: {name: partner}
---
apiVersion: v1
kind: Pod
metadata: {name: partner-0, namespace: partner, labels: {app: partner}}
spec:
  serviceAccountName: partner
  containers: [{name: app, image: app}]
status: {podIP: 10.9.0.4}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api-web, namespace: shop}
spec:
  host: api.example.com
  workloadSelector: {matchLabels: {app: web}}
  trafficPolicy: {tls: {mode: MUTUAL, credentialName: web-client}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: partner-api, namespace: partner}
spec:
  hosts: [partner-api.example.net]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: partner-api, namespace: partner}
spec:
  host: partner-api.example.net
  trafficPolicy: {tls: {mode: MUTUAL, credentialName: partner-client}}
---
` + secret("shop", "web-client", "client.crt", "client.key") + "---\n" +
		secret("shop", "unreferenced", "client.crt", "client.key") + "---\n" +
		secret("partner", "web-client", "stranger.crt", "stranger.key") + "---\n" +
		secret("partner", "partner-client", "stranger.crt", "stranger.key")
}

// TestDestinationRuleCredentialsStayInTheirNamespace: sidecars ask SDS for
// credentialName Secrets. Each gets exactly the Secrets of its own namespace that a
// DestinationRule applying to it names: never a Secret of another namespace (by its
// name there, or by a "namespace/name" form), never one no applying rule names, and
// the certificate served under a name is its own namespace's Secret.
func TestDestinationRuleCredentialsStayInTheirNamespace(t *testing.T) {
	w := startWardend(t, drCredentialMesh(t))
	partner := xds.Identity{Namespace: "partner", ServiceAccount: "partner", Pod: "partner-0"}
	attack := []string{"kubernetes://partner-client", "kubernetes://partner-client-cacert", "kubernetes://partner/partner-client",
		"kubernetes://partner/web-client", "kubernetes://unreferenced", "kubernetes://unreferenced-cacert",
		"kubernetes://shop/unreferenced", "kubernetes-gateway://partner/partner-client", "partner-client"}
	cases := []struct {
		name  string
		ident xds.Identity
		own   []string // the credentials its rules name, served
	}{
		// web: its rule names web-client; partner has a Secret of that name too.
		{"web of shop", web, []string{"kubernetes://web-client", "kubernetes://web-client-cacert"}},
		// admin: the selector rule does not apply, so not even shop's web-client.
		{"admin of shop", admin, nil},
		// partner: its own rule's Secret only; shop's web-client is not its business.
		{"partner", partner, []string{"kubernetes://partner-client", "kubernetes://partner-client-cacert"}},
	}
	for _, c := range cases {
		for _, delta := range []bool{false, true} {
			t.Run(c.name+"/"+proto(delta), func(t *testing.T) {
				cl := w.open(t, w.conn(t), w.token(t, c.ident, time.Hour), delta)
				names := append([]string{translate.SecretDefault, translate.SecretRootCA}, c.own...)
				names = append(names, "kubernetes://web-client", "kubernetes://web-client-cacert")
				names = append(names, attack...)
				slices.Sort(names)
				names = slices.Compact(names)
				if err := cl.request(node(c.ident, nil, nil), resource.SecretType, names...); err != nil {
					t.Fatal(err)
				}
				want := append([]string{translate.SecretDefault, translate.SecretRootCA}, c.own...)
				got := waitSecrets(t, cl, len(want))
				gotNames := make([]string, 0, len(got))
				for n := range got {
					gotNames = append(gotNames, n)
				}
				slices.Sort(gotNames)
				slices.Sort(want)
				if !slices.Equal(gotNames, want) {
					t.Fatalf("served %v, want %v", gotNames, want)
				}
				for n, s := range got {
					if !strings.HasPrefix(n, "kubernetes://") || s.GetTlsCertificate() == nil {
						continue
					}
					// shop's Secrets hold client.crt, partner's stranger.crt.
					wantCN := map[string]string{"shop": "client.example.com", "partner": "stranger.example.com"}[c.ident.Namespace]
					if cn := leafCN(t, s.GetTlsCertificate().GetCertificateChain().GetInlineBytes()); cn != wantCN {
						t.Errorf("%s served with the certificate of %q, want %s's (%q)", n, cn, c.ident.Namespace, wantCN)
					}
				}
			})
		}
	}
}

// waitSecrets collects the SDS secrets the stream served, by name, until it has at
// least n, within a deadline. A server that over-serves does so in the same response
// (SotW answers with every requested name it has; delta likewise), so more than n
// shows up here.
func waitSecrets(t *testing.T, cl *client, n int) map[string]*tlsv3.Secret {
	t.Helper()
	collect := func() map[string]*tlsv3.Secret {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		out := map[string]*tlsv3.Secret{}
		for _, a := range cl.served {
			if a.GetTypeUrl() != resource.SecretType {
				continue
			}
			s := &tlsv3.Secret{}
			if err := a.UnmarshalTo(s); err != nil {
				t.Fatal(err)
			}
			out[s.GetName()] = s
		}
		return out
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := collect()
		if len(got) >= n {
			return got
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("served %d secrets within 20s, want %d (stream: %v)", len(got), n, cl.err())
		}
		if err := cl.waitResponse(left); err != nil {
			t.Fatalf("%v (served so far: %d)", err, len(got))
		}
	}
}

func leafCN(t *testing.T, chain []byte) string {
	t.Helper()
	block, _ := pem.Decode(chain)
	if block == nil {
		t.Fatal("no PEM certificate served")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

// TestDestinationRuleCannotReadGatewayCredentials: Secrets are split by use as well as
// by namespace. wardend reads istio-system's Secrets for gateways only
// (--gateway-secret-namespaces) and shop's for clients (--client-secret-namespaces).
// A sidecar of istio-system, with a DestinationRule of another namespace (exportTo
// *) naming the ingress gateway's Secret for TLS origination to a ServiceEntry host,
// gets no cluster naming it and no SDS answer for it, however it asks; the gateway
// still gets it, and shop's web its own client Secret.
func TestDestinationRuleCannotReadGatewayCredentials(t *testing.T) {
	ingress := newCredential(t, "istio-system", "ingress-cred", "a.example.com")
	config := drCredentialMesh(t) + `---
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: attacker}
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
metadata: {name: intruder-0, namespace: istio-system, labels: {app: intruder}}
spec:
  serviceAccountName: intruder
  containers: [{name: app, image: app}]
status: {podIP: 10.9.1.4}
---
` + ingress.secretYAML() + `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-a, protocol: HTTPS}
    hosts: ["a.example.com"]
    tls: {mode: SIMPLE, credentialName: ingress-cred}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: exfil, namespace: attacker}
spec:
  hosts: [exfil.example.org]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: exfil, namespace: attacker}
spec:
  host: exfil.example.org
  exportTo: ["*"]
  trafficPolicy: {tls: {mode: MUTUAL, credentialName: ingress-cred, insecureSkipVerify: true}}
`
	w := startWardend(t, config, "--gateway-secret-namespaces", "istio-system", "--client-secret-namespaces", "shop,partner")
	const sds = "kubernetes://ingress-cred"
	for _, delta := range []bool{false, true} {
		t.Run(proto(delta)+"/the gateway gets its credential", func(t *testing.T) {
			cl := askCredentials(t, w, ingressA, true, delta, sds)
			if got := cl.servedCredentials(t); got[sds] != ingress.keyPEM {
				t.Fatalf("istio-system's gateway was not served %s (the test proves nothing): served %v", sds, keys(got))
			}
		})
		t.Run(proto(delta)+"/shop's web gets its client credential", func(t *testing.T) {
			cl := askCredentials(t, w, web, false, delta, "kubernetes://web-client", "kubernetes://web-client-cacert")
			if got := cl.servedCredentials(t); got["kubernetes://web-client"] == "" {
				t.Fatalf("web was not served kubernetes://web-client (the test proves nothing): served %v", keys(got))
			}
		})
		t.Run(proto(delta)+"/a sidecar of istio-system gets no gateway credential", func(t *testing.T) {
			cl := askCredentials(t, w, intruder, false, delta, sds, sds+"-cacert", "kubernetes://istio-system/ingress-cred")
			if err := cl.request(nil, resource.ClusterType); err != nil {
				t.Fatal(err)
			}
			if err := cl.waitResponse(15 * time.Second); err != nil {
				t.Fatalf("CDS: %v", err)
			}
			got := cl.servedCredentials(t)
			if got[translate.SecretDefault] == "" {
				t.Fatalf("intruder was not served its own certificate (the test proves nothing): served %v", keys(got))
			}
			for n := range got {
				if strings.HasPrefix(n, "kubernetes://") {
					t.Errorf("intruder was served %s", n)
				}
			}
			// Translation: the exfil cluster is blocked, no resource names the credential.
			all := cl.allServedBytes()
			if !strings.Contains(all, "exfil.example.org") {
				t.Fatal("intruder was served nothing of exfil.example.org (the test proves nothing)")
			}
			if strings.Contains(all, sds) {
				t.Errorf("what intruder was served names %s", sds)
			}
			for _, tr := range ingress.keyTraces() {
				if strings.Contains(all, tr) {
					t.Errorf("what intruder was served holds the gateway's private key")
				}
			}
		})
	}
}
