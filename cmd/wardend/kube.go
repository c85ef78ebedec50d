package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

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
}

func addKubeFlags(f *pflag.FlagSet, k *kubeOptions) {
	f.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to serve (Kubernetes mode; in a pod the in-cluster config is used when --config-dir is not set)")
	f.StringVar(&k.audience, "token-audience", "warden", "audience of the projected service-account tokens proxies present (Kubernetes mode)")
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

func newKubeSource(o options, log *slog.Logger) (source, error) {
	c, err := newKubeClients(o, log)
	if err != nil {
		return nil, err
	}
	return kube.New(c.client, c.dyn, log, kube.WithComponent("wardend")), nil
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
	auth := &xds.ChainAuth{
		Bootstrap: &xds.TokenAuth{Signer: signer},
		Kube:      &xds.TokenReviewAuth{Reviews: c.client.AuthenticationV1().TokenReviews(), Audience: o.kube.audience},
	}
	return ca, auth, nil
}
