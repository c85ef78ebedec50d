package kube

import (
	"context"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/xds"
)

// TestProxyCredentialsInKubernetesMode attacks wardend's xDS port in Kubernetes mode
// with real service-account tokens from the API server: tokens not bound to a pod, for
// another audience, or for one pod presented as another are refused; and neither a
// wardend-signed token's label claims nor node metadata override the Pod object's
// labels, which alone decide which policies select the proxy.
func TestProxyCredentialsInKubernetesMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	work := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bin, err := harness.FindBinaries(ctx, filepath.Join(work, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := kubeenv.Start(ctx, kubeenv.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	if err := env.ApplyFiles(ctx, filepath.Join(repoRoot(t), "deploy")); err != nil {
		t.Fatal(err)
	}
	kc, err := env.ServiceAccountKubeconfig(ctx, kubeenv.WardendNamespace, kubeenv.WardendServiceAccount, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kcPath := filepath.Join(work, "wardend.kubeconfig")
	if err := os.WriteFile(kcPath, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.EnsureNamespace(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	// Only app=db is selected by this policy: its key marks db's configuration.
	if err := env.Apply(ctx, []byte(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: db-only, namespace: demo}
spec:
  selector: {matchLabels: {app: db}}
  rules: [{from: [{source: {principals: [cluster.local/ns/demo/sa/web]}}]}]
`)); err != nil {
		t.Fatal(err)
	}
	w := startWardend(t, ctx, bin.Wardend, kcPath, work)
	rootPEM, err := env.MeshRootPEM(ctx, kubeenv.WardendNamespace)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)

	web := xds.Identity{Namespace: "demo", ServiceAccount: "web", Pod: "web-0"}
	db := xds.Identity{Namespace: "demo", ServiceAccount: "db", Pod: "db-0"}
	webPod, err := env.WritePod(ctx, kubeenv.Pod{Namespace: "demo", Name: "web-0", IP: "10.250.2.1", ServiceAccount: "web",
		Labels: map[string]string{"app": "web"}, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.WritePod(ctx, kubeenv.Pod{Namespace: "demo", Name: "db-0", IP: "10.250.2.2", ServiceAccount: "db",
		Labels: map[string]string{"app": "db"}, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}); err != nil {
		t.Fatal(err)
	}
	webTok, err := env.Token(ctx, "demo", "web", []string{kubeenv.ProxyTokenAudience}, webPod, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	unbound, err := env.Token(ctx, "demo", "web", []string{kubeenv.ProxyTokenAudience}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	apiAudience, err := env.Token(ctx, "demo", "web", nil, webPod, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A wardend-signed token for web-0 that claims db's labels (wardend's key is in its Secret).
	sec, err := env.Client.CoreV1().Secrets(kubeenv.WardendNamespace).Get(ctx, "warden-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keyDir := filepath.Join(work, "key")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keyDir, certs.TokenKeyFile), sec.Data[certs.TokenKeyFile], 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := certs.LoadOrCreateTokenKey(keyDir)
	if err != nil {
		t.Fatal(err)
	}
	claimsDB, err := signer.Sign(certs.TokenClaims{Namespace: "demo", ServiceAccount: "web", Pod: "web-0",
		Labels: map[string]string{"app": "db"}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	// listeners opens a stream with token as node n and returns the LDS bytes served,
	// or the stream's error.
	listeners := func(token string, n xds.Identity, labels map[string]string) (string, error) {
		conn := xdsConn(t, w.xdsAddr, roots)
		defer conn.Close()
		sctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), 20*time.Second)
		defer cancel()
		st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(sctx)
		if err != nil {
			return "", err
		}
		md, _ := xds.NodeMetadata(n, labels, nil, false)
		_ = st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: n.NodeID(), Metadata: md}, TypeUrl: resource.ListenerType})
		resp, err := st.Recv()
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, r := range resp.GetResources() {
			b.Write(r.GetValue())
		}
		return b.String(), nil
	}

	for name, tc := range map[string]struct {
		token string
		node  xds.Identity
		code  codes.Code
	}{
		"token not bound to a pod":         {unbound, web, codes.Unauthenticated},
		"token for the API server":         {apiAudience, web, codes.Unauthenticated},
		"web-0's token presented as db-0":  {webTok, db, codes.PermissionDenied},
		"garbage in a kubernetes shape":    {"eyJhbGciOiJSUzI1NiJ9.e30.c2ln", web, codes.Unauthenticated},
		"wardend-signed token as db-0 pod": {claimsDB, db, codes.PermissionDenied},
	} {
		if lds, err := listeners(tc.token, tc.node, nil); status.Code(err) != tc.code {
			t.Errorf("%s: got %v (%d bytes of listeners), want %v", name, err, len(lds), tc.code)
		}
	}

	dbTok, err := env.Token(ctx, "demo", "db", []string{kubeenv.ProxyTokenAudience}, mustPod(t, ctx, env, "demo", "db-0"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// wardend learns of the Pods through its informers: wait until db-0 is served its
	// policy, so the probes below run against an input that has both Pod objects.
	waitFor(t, ctx, 30*time.Second, "db-0 served policy db-only", func() error {
		dbLDS, err := listeners(dbTok, db, nil)
		if err != nil {
			return err
		}
		if !strings.Contains(dbLDS, "policy[db-only]") {
			return errString("db-0's listeners lack policy db-only")
		}
		return nil
	})
	for name, probe := range map[string]func() (string, error){
		"its own credential":                 func() (string, error) { return listeners(webTok, web, nil) },
		"node metadata LABELS app=db":        func() (string, error) { return listeners(webTok, web, map[string]string{"app": "db"}) },
		"wardend-signed token claims app=db": func() (string, error) { return listeners(claimsDB, web, nil) },
	} {
		lds, err := probe()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(lds, "policy[db-only]") {
			t.Errorf("%s: web-0 was served db's policy: the Pod object's labels must decide", name)
		}
	}
	if !strings.Contains(w.tail(400), "claimed another identity") {
		t.Error("the node switch was not logged")
	}
}

func mustPod(t *testing.T, ctx context.Context, env *kubeenv.Env, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := env.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type errString string

func (e errString) Error() string { return string(e) }
