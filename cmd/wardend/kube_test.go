package main

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/wardenmesh/warden/xds"
)

func parseKubeFlags(t *testing.T, args ...string) kubeOptions {
	t.Helper()
	var k kubeOptions
	f := pflag.NewFlagSet("wardend", pflag.ContinueOnError)
	addKubeFlags(f, &k)
	if err := f.Parse(args); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKubeRateLimitFlags(t *testing.T) {
	k := parseKubeFlags(t)
	cfg := &rest.Config{}
	applyRateLimits(cfg, k)
	if cfg.QPS != 100 || cfg.Burst != 200 {
		t.Fatalf("default QPS/Burst = %v/%d, want 100/200", cfg.QPS, cfg.Burst)
	}
	k = parseKubeFlags(t, "--kube-api-qps=20", "--kube-api-burst=40")
	applyRateLimits(cfg, k)
	if cfg.QPS != 20 || cfg.Burst != 40 {
		t.Fatalf("QPS/Burst = %v/%d, want 20/40", cfg.QPS, cfg.Burst)
	}
	for _, args := range [][]string{{"--kube-api-qps=0"}, {"--kube-api-burst=0"}, {"--token-review-cache-size=-1"},
		{"--token-review-cache-ttl=-1s"}, {"--token-review-negative-ttl=-1s"}} {
		if err := parseKubeFlags(t, args...).validate(); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if err := parseKubeFlags(t).validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	// The limits reach the clients wardend builds.
	_, err := newKubeClients(options{kube: parseKubeFlags(t, "--kube-api-qps=0")}, nil)
	if err == nil || !strings.Contains(err.Error(), "--kube-api-qps") {
		t.Fatalf("newKubeClients with --kube-api-qps=0: %v", err)
	}
}

func TestKubeTokenReviewsAreCached(t *testing.T) {
	c := fake.NewClientset()
	calls := 0
	c.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview).DeepCopy()
		tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{
			Username: "system:serviceaccount:demo:web", Extra: map[string]authnv1.ExtraValue{xds.PodNameExtra: {"web-0"}}}}
		return true, tr, nil
	})
	k := parseKubeFlags(t, "--token-review-cache-size=5")
	reg := prometheus.NewRegistry()
	k.metrics = reg
	reviews, err := newTokenReviews(&kubeClients{client: c}, k)
	if err != nil {
		t.Fatal(err)
	}
	auth := &xds.ChainAuth{Kube: &xds.TokenReviewAuth{Reviews: reviews, Audience: "warden"}}
	for range 3 {
		if _, err := auth.Authenticate(context.Background(), "some-token"); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Fatalf("3 authentications made %d TokenReviews, want 1", calls)
	}
	if cachedTokenReviews(auth) != reviews {
		t.Fatal("cachedTokenReviews does not find the authenticator's cache")
	}
	if cachedTokenReviews(&xds.BootstrapTokenAuth{}) != nil {
		t.Fatal("cachedTokenReviews found a cache in directory mode")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"warden_tokenreview_cache_hits_total", "warden_tokenreview_cache_misses_total"} {
		if !names[n] {
			t.Errorf("metric %s not registered (have %v)", n, names)
		}
	}
}

// TestSecretFlagsRefuseOwnNamespace: neither Secret flag may name wardend's own
// namespace, which holds the mesh CA and bootstrap-token key Secrets.
func TestSecretFlagsRefuseOwnNamespace(t *testing.T) {
	for _, args := range [][]string{{"--gateway-secret-namespaces=istio-system,warden-system"}, {"--client-secret-namespaces=warden-system"}} {
		err := parseKubeFlags(t, args...).validateSecretNamespaces("warden-system")
		if err == nil || !strings.Contains(err.Error(), strings.SplitN(strings.TrimPrefix(args[0], "--"), "=", 2)[0]) {
			t.Errorf("%v: %v, want an error naming the flag", args, err)
		}
	}
	if err := parseKubeFlags(t, "--client-secret-namespaces=shop").validateSecretNamespaces("warden-system"); err != nil {
		t.Errorf("defaults and shop refused: %v", err)
	}
	_, err := newKubeClients(options{namespace: "warden-system", kube: parseKubeFlags(t, "--client-secret-namespaces=warden-system")}, nil)
	if err == nil || !strings.Contains(err.Error(), "--client-secret-namespaces") {
		t.Errorf("newKubeClients with wardend's namespace as a client Secret namespace: %v", err)
	}
}
