package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/watch/kube"
	"github.com/wardenmesh/warden/xds"
)

// kubeOptions configure Kubernetes mode: wardend watches the API server instead of a
// folder, authenticates proxies with TokenReview and keeps the mesh CA in a Secret.
type kubeOptions struct {
	kubeconfig string
	audience   string
	qps        float32
	burst      int
	// TokenReview cache: answers kept until the token's exp, at most reviewTTL.
	reviewTTL         time.Duration
	reviewNegativeTTL time.Duration
	reviewCacheSize   int
	// secretNamespaces are the namespaces whose Secrets wardend watches for gateway
	// credentialName (deploy/20-rbac.yaml grants exactly these).
	secretNamespaces []string
	// clientSecretNamespaces are the namespaces whose Secrets wardend watches for
	// DestinationRule credentialName (TLS origination by the workloads there; each is
	// served only to proxies of its own namespace). None by default.
	clientSecretNamespaces []string
	// secretFlagsSet: either Secret flag was given (directory mode then applies them).
	secretFlagsSet bool
	// metrics, when set, receives the TokenReview cache's metrics (wardend's /metrics registry).
	metrics prometheus.Registerer
}

func addKubeFlags(f *pflag.FlagSet, k *kubeOptions) {
	f.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to serve (Kubernetes mode; in a pod the in-cluster config is used when --config-dir is not set)")
	f.StringVar(&k.audience, "token-audience", "warden", "audience of the projected service-account tokens proxies present (Kubernetes mode)")
	f.Float32Var(&k.qps, "kube-api-qps", 100, "queries per second to the Kubernetes API server (client-side limit)")
	f.IntVar(&k.burst, "kube-api-burst", 200, "burst of queries to the Kubernetes API server above --kube-api-qps")
	f.DurationVar(&k.reviewTTL, "token-review-cache-ttl", xds.DefaultTokenReviewTTL, "longest time a TokenReview that authenticated a token is reused (never past the token's exp); 0 disables")
	f.IntVar(&k.reviewCacheSize, "token-review-cache-size", xds.DefaultTokenReviewCacheSize, "most TokenReview answers kept (least recently used evicted first); 0 disables the cache")
	f.StringSliceVar(&k.secretNamespaces, "gateway-secret-namespaces", []string{"istio-system"}, "namespaces of ingress gateways whose Secrets wardend watches for Gateway credentialName (Kubernetes mode, and directory mode when given; RBAC: a Role per namespace, see deploy/20-rbac.yaml); empty: none")
	f.StringSliceVar(&k.clientSecretNamespaces, "client-secret-namespaces", nil, "namespaces whose Secrets wardend watches for DestinationRule credentialName, served over SDS only to proxies of the same namespace (Kubernetes mode, and directory mode when given; RBAC: a Role per namespace, see deploy/20-rbac.yaml); default: none")
	f.DurationVar(&k.reviewNegativeTTL, "token-review-negative-ttl", xds.DefaultTokenReviewNegativeTTL, "how long a token the API server refused is refused without asking again; 0 disables")
}

// validateSecretNamespaces refuses wardend's own namespace (that of the mesh CA and
// bootstrap-token key Secrets) in either Secret flag: no proxy is ever served them.
func (k kubeOptions) validateSecretNamespaces(own string) error {
	for _, f := range []struct {
		flag string
		nss  []string
	}{{"--gateway-secret-namespaces", k.secretNamespaces}, {"--client-secret-namespaces", k.clientSecretNamespaces}} {
		if slices.Contains(f.nss, own) {
			return fmt.Errorf("%s %s: wardend's own namespace (--namespace), which holds the mesh CA, is never served to proxies", f.flag, own)
		}
	}
	return nil
}

// validate checks the Kubernetes flags.
func (k kubeOptions) validate() error {
	switch {
	case k.qps <= 0:
		return fmt.Errorf("--kube-api-qps %v: must be positive", k.qps)
	case k.burst < 1:
		return fmt.Errorf("--kube-api-burst %d: must be at least 1", k.burst)
	case k.reviewTTL < 0, k.reviewNegativeTTL < 0:
		return errors.New("--token-review-cache-ttl and --token-review-negative-ttl must not be negative")
	case k.reviewCacheSize < 0:
		return fmt.Errorf("--token-review-cache-size %d: must not be negative", k.reviewCacheSize)
	}
	return nil
}

// kubeMode reports whether wardend serves a cluster: with --kubeconfig, or in a pod
// without --config-dir.
func kubeMode(o options) bool {
	return o.kube.kubeconfig != "" || (o.configDir == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "")
}

// kubeClients are the API clients of Kubernetes mode.
type kubeClients struct {
	client kubernetes.Interface
	dyn    dynamic.Interface
}

func newKubeClients(o options, log *slog.Logger) (*kubeClients, error) {
	if o.configDir != "" {
		return nil, errors.New("--config-dir and --kubeconfig are exclusive: serve a folder or a cluster")
	}
	if err := o.kube.validate(); err != nil {
		return nil, err
	}
	if err := o.kube.validateSecretNamespaces(o.namespace); err != nil {
		return nil, err
	}
	klog.SetSlogLogger(log.With("component", "client-go"))
	var (
		cfg *rest.Config
		err error
	)
	if o.kube.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.kube.kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	cfg.UserAgent = "wardend"
	applyRateLimits(cfg, o.kube)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	return &kubeClients{client: client, dyn: dyn}, nil
}

// applyRateLimits sets client-go's client-side limiter: its default (5 QPS, burst 10)
// would queue a fleet's reconnect behind a handful of TokenReviews per second.
func applyRateLimits(cfg *rest.Config, k kubeOptions) {
	cfg.QPS, cfg.Burst = k.qps, k.burst
}

// newTokenReviews is the TokenReview client proxies are authenticated with: the API
// server's, behind a cache configured by the --token-review-* flags. The debug API's
// authorizer may share it.
func newTokenReviews(c *kubeClients, k kubeOptions) (*xds.TokenReviewCache, error) {
	reviews, err := xds.NewTokenReviewCache(c.client.AuthenticationV1().TokenReviews(),
		xds.WithTokenReviewTTL(k.reviewTTL),
		xds.WithTokenReviewNegativeTTL(k.reviewNegativeTTL),
		xds.WithTokenReviewCacheSize(k.reviewCacheSize),
		xds.WithTokenReviewMetrics(k.metrics))
	if err != nil {
		return nil, fmt.Errorf("TokenReview cache metrics: %w", err)
	}
	return reviews, nil
}

// cachedTokenReviews returns the cached TokenReview client inside an authenticator made
// by loadKubeTrust (nil in directory mode), for others that review tokens, such as the
// debug API, to share its cache.
func cachedTokenReviews(auth xds.Authenticator) *xds.TokenReviewCache {
	chain, ok := auth.(*xds.ChainAuth)
	if !ok {
		return nil
	}
	tr, ok := chain.Kube.(*xds.TokenReviewAuth)
	if !ok {
		return nil
	}
	c, _ := tr.Reviews.(*xds.TokenReviewCache)
	return c
}

func newKubeSource(o options, log *slog.Logger) (source, error) {
	c, err := newKubeClients(o, log)
	if err != nil {
		return nil, err
	}
	return kube.New(c.client, c.dyn, log, kube.WithComponent("wardend"), kube.WithSecretUses(o.kube.secretNamespaces, o.kube.clientSecretNamespaces)), nil
}

// loadKubeTrust loads the mesh CA and the bootstrap-token key from Secrets in wardend's
// namespace (creating them, under a Lease, on the first start of the first replica)
// and authenticates proxies with service-account tokens (TokenReview) or, as in
// directory mode, with bootstrap tokens signed by the shared key.
func loadKubeTrust(ctx context.Context, o options, trustDomain string, log *slog.Logger) (*certs.CA, xds.Authenticator, error) {
	c, err := newKubeClients(o, log)
	if err != nil {
		return nil, nil, err
	}
	store := &caSecrets{client: c.client, namespace: o.namespace, identity: o.replica, log: log}
	ca, signer, err := store.load(ctx, trustDomain)
	if err != nil {
		return nil, nil, err
	}
	reviews, err := newTokenReviews(c, o.kube)
	if err != nil {
		return nil, nil, err
	}
	auth := &xds.ChainAuth{
		Bootstrap: &xds.BootstrapTokenAuth{Signer: signer},
		Kube:      &xds.TokenReviewAuth{Reviews: reviews, Audience: o.kube.audience},
	}
	return ca, auth, nil
}
