package xds

import (
	"maps"
	"slices"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wardenmesh/warden/watch"
)

// TestGatewayCredentialsOwnNamespaceOnly: SDS credential names resolve to Secrets of
// the namespace the proxy proved, never of another namespace holding a Secret of the
// same name, even when translation (which filters the same way) named them. The
// adversarial e2e test (e2e/adversarial TestGatewayCredentialsStayInTheirNamespace)
// covers the two layers together on a real wardend.
func TestGatewayCredentialsOwnNamespaceOnly(t *testing.T) {
	in := &watch.Input{Secrets: map[string]*watch.Secret{
		"istio-system/ingress-cred": {CertChainPEM: []byte("chain-a"), KeyPEM: []byte("key-a"), CAPEM: []byte("ca-a"), Cert: &watch.CertInfo{}, Uses: watch.UseGateway},
		"team-b/b-cred":             {CertChainPEM: []byte("chain-b"), KeyPEM: []byte("key-b"), Cert: &watch.CertInfo{}, Uses: watch.UseGateway},
	}}
	names := []string{"kubernetes://ingress-cred", "kubernetes://ingress-cred-cacert", "kubernetes://b-cred", "default"}
	got := gatewayCredentials(in, "team-b", names)
	if len(got) != 1 || string(got["kubernetes://b-cred"].GetTlsCertificate().GetPrivateKey().GetInlineBytes()) != "key-b" {
		t.Fatalf("team-b's gateway got %v, want only its own kubernetes://b-cred", secretNames(got))
	}
	got = gatewayCredentials(in, "istio-system", names)
	if len(got) != 2 || got["kubernetes://ingress-cred"] == nil || got["kubernetes://ingress-cred-cacert"] == nil {
		t.Fatalf("istio-system's gateway got %v, want its certificate and CA", secretNames(got))
	}
	if got := gatewayCredentials(in, "shop", names); len(got) != 0 {
		t.Fatalf("a proxy of namespace shop got %v", secretNames(got))
	}
}

// names lists the secrets' names only (never key material in a test failure).
func secretNames(m map[string]*tlsv3.Secret) []string { return slices.Sorted(maps.Keys(m)) }

// TestCredentialsByUse: a Secret read for gateways only (--gateway-secret-namespaces)
// is never a sidecar's DestinationRule credential, even in its own namespace and even
// when translation (which checks the same) named it; a Secret read for clients is;
// one read for nothing is served to nobody.
func TestCredentialsByUse(t *testing.T) {
	sec := func(key string, use watch.SecretUse) *watch.Secret {
		return &watch.Secret{CertChainPEM: []byte("chain"), KeyPEM: []byte(key), Cert: &watch.CertInfo{}, Uses: use}
	}
	in := &watch.Input{Secrets: map[string]*watch.Secret{
		"istio-system/ingress-cred": sec("gateway-key", watch.UseGateway),
		"istio-system/egress-cred":  sec("client-key", watch.UseClient),
		"istio-system/unread":       sec("unread-key", 0),
	}}
	names := []string{"kubernetes://ingress-cred", "kubernetes://egress-cred", "kubernetes://unread"}
	if got := secretNames(clientCredentials(in, "istio-system", names, nil)); !slices.Equal(got, []string{"kubernetes://egress-cred"}) {
		t.Errorf("a sidecar of istio-system got %v, want only the client Secret kubernetes://egress-cred", got)
	}
	// Directory mode reads every Secret for both uses; a name translation put among a
	// gateway's Gateway credentials is still never a sidecar's.
	in.Secrets["istio-system/ingress-cred"].Uses = watch.UseGateway | watch.UseClient
	if got := secretNames(clientCredentials(in, "istio-system", names, []string{"kubernetes://ingress-cred"})); !slices.Equal(got, []string{"kubernetes://egress-cred"}) {
		t.Errorf("a sidecar of istio-system given a Gateway credential name got %v, want only kubernetes://egress-cred", got)
	}
	if got := secretNames(gatewayCredentials(in, "istio-system", names)); !slices.Equal(got, []string{"kubernetes://egress-cred", "kubernetes://ingress-cred"}) {
		t.Errorf("the gateway of istio-system got %v, want its gateway and client Secrets, not the unread one", got)
	}
}

// TestProvenGateway: the gateway role (and so Gateway credentials) needs both the
// claim and a Pod object labelled as a gateway; a claiming sidecar pod of the same
// namespace, or a pod the Input has no object for, is not one.
func TestProvenGateway(t *testing.T) {
	in := watch.Build([]watch.Object{
		{Meta: watch.Meta{Kind: "Pod", Namespace: "istio-system", Name: "ingress-0"}, Spec: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"istio": "ingressgateway"}}}},
		{Meta: watch.Meta{Kind: "Pod", Namespace: "istio-system", Name: "intruder"}, Spec: &corev1.Pod{}},
	}, nil)
	for _, c := range []struct {
		pod   string
		claim bool
		want  bool
	}{{"ingress-0", true, true}, {"ingress-0", false, false}, {"intruder", true, false}, {"unknown", true, false}} {
		if got := provenGateway(in, Identity{Namespace: "istio-system", Pod: c.pod}, c.claim); got != c.want {
			t.Errorf("pod %s, claim %v: provenGateway %v, want %v", c.pod, c.claim, got, c.want)
		}
	}
}
