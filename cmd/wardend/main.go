// Command wardend is Warden's control plane: it watches Istio security resources
// (from a folder of YAML files, the embedded default), translates them into Envoy
// configuration, mints SPIFFE workload certificates, and serves stock Envoy over xDS.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/watch"
	"github.com/wardenmesh/warden/watch/jwks"
	"github.com/wardenmesh/warden/xds"
)

type options struct {
	configDir   string
	stateDir    string
	xdsAddr     string
	debugAddr   string
	debugAuth   string
	metricsAddr string
	namespace   string
	replica     string
	certTTL     time.Duration
	// access logs from the proxies (xds/als.go)
	accessLogs                       bool
	accessLogEntries, accessLogBytes int
	accessLogRate                    float64
	logLevel                         string
	serverNames                      []string
	kube                             kubeOptions
	inject                           injectOptions
}

func main() {
	var o options
	cmd := &cobra.Command{
		Use:   "wardend",
		Short: "Warden control plane: Istio security semantics on stock Envoy",
		Example: `  wardend --config-dir ./mesh --state-dir /var/lib/warden --xds-addr :15012
  wardenctl status`,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			f := cmd.Flags()
			o.kube.secretFlagsSet = f.Changed("gateway-secret-namespaces") || f.Changed("client-secret-namespaces")
			return run(ctx, o)
		},
	}
	host, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVar(&o.configDir, "config-dir", "", "folder of Kubernetes/Istio YAML manifests to serve (reloaded on change)")
	f.StringVar(&o.stateDir, "state-dir", envOr("WARDEN_STATE_DIR", "/var/lib/warden"), "where the mesh CA and token key are kept (or plug-in CA files under cacerts/)")
	f.StringVar(&o.xdsAddr, "xds-addr", ":15012", "xDS (gRPC over TLS) listen address")
	f.StringVar(&o.debugAddr, "debug-addr", envOr("WARDEN_DEBUG_ADDR", "127.0.0.1:15014"), "debug API listen address: on loopback it needs no credential; elsewhere it is HTTPS and every request needs a bearer token allowed by Kubernetes RBAC (Kubernetes mode only)")
	f.StringVar(&o.debugAuth, "debug-auth", "auto", "auto (operators' tokens are checked when --debug-addr is not loopback) or kubernetes (always: HTTPS, TokenReview and SubjectAccessReview)")
	f.StringVar(&o.metricsAddr, "metrics-addr", envOr("WARDEN_METRICS_ADDR", ":15015"), "listen address of /metrics, /healthz and /readyz, for scraping and probes (no credential; empty: off)")
	f.StringVar(&o.namespace, "namespace", "warden-system", "wardend's own namespace (part of its SPIFFE ID)")
	f.StringVar(&o.replica, "replica", host, "this replica's name, shown in `wardenctl status`")
	f.DurationVar(&o.certTTL, "workload-cert-ttl", 24*time.Hour, "lifetime of workload certificates (rotated at half life)")
	f.BoolVar(&o.accessLogs, "access-logs", true, "configure every sidecar to send denials, dry-run denials and plaintext requests to wardend's access log service (MeshConfig accessLogFile: everything)")
	f.IntVar(&o.accessLogEntries, "access-log-window-entries", xds.DefaultWindowEntries, "most access log entries wardend keeps (the oldest are pushed out and counted)")
	f.IntVar(&o.accessLogBytes, "access-log-window-bytes", xds.DefaultWindowBytes, "most bytes of access log entries wardend keeps")
	f.Float64Var(&o.accessLogRate, "access-log-rate", xds.DefaultAccessLogRate, "most access log entries wardend reads per second over all streams, so floods cannot slow xDS pushes (negative: no cap); a stream over it is read later and Envoy drops what its buffer cannot hold")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringSliceVar(&o.serverNames, "server-name", nil, "extra DNS names or IPs for wardend's serving certificate")
	addKubeFlags(f, &o.kube)
	addInjectFlags(f, &o.inject)
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// source produces whole mesh inputs: the directory watcher, or (Kubernetes mode) the
// informers. It sends the first Input only once it has a complete view.
type source interface {
	Run(ctx context.Context, out chan<- *watch.Input) error
}

func newSource(o options, log *slog.Logger) (source, error) {
	if kubeMode(o) {
		return newKubeSource(o, log)
	}
	if o.configDir == "" {
		return nil, errors.New("--config-dir (a folder of manifests) or --kubeconfig (a cluster) is required")
	}
	var opts []watch.DirOption
	if o.kube.secretFlagsSet {
		if err := o.kube.validateSecretNamespaces(o.namespace); err != nil {
			return nil, err
		}
		// Directory mode serves every Secret of the folder for both uses unless the
		// Secret flags are given; then they split Secrets by use as in Kubernetes mode.
		opts = append(opts, watch.WithSecretUses(o.kube.secretNamespaces, o.kube.clientSecretNamespaces))
	}
	return watch.NewDirWatcher(o.configDir, log, opts...), nil
}

func run(ctx context.Context, o options) error {
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	debugAuth, err := debugNeedsAuth(o)
	if err != nil {
		return err
	}
	src, err := newSource(o, log)
	if err != nil {
		return err
	}
	errc := make(chan error, 4)
	raw := make(chan *watch.Input, 1)
	go func() { errc <- src.Run(ctx, raw) }()
	// RequestAuthentication jwksUri key sets are fetched here, never by Envoy, and
	// inlined: an unreachable or bad key set fails only its issuer's tokens (401).
	inputs := make(chan *watch.Input, 1)
	go func() { errc <- jwks.New(jwks.Options{Log: log}).Run(ctx, raw, inputs) }()

	// Nothing is served until the source has a complete first view: the trust domain
	// the CA signs for comes from it, and an empty view must never be pushed.
	var first *watch.Input
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return fmt.Errorf("configuration source: %w", err)
	case first = <-inputs:
	}
	metrics := xds.NewMetrics()
	o.kube.metrics = metrics.Registry
	ca, auth, err := loadTrust(ctx, o, first.TrustDomain, log)
	if err != nil {
		return err
	}
	store := certs.NewStore(ca, o.certTTL, time.Now, certs.WithLogger(log))
	wid, err := xds.WardendID(ca.TrustDomain(), o.namespace)
	if err != nil {
		return err
	}
	serving := &xds.ServingCert{CA: ca, ID: wid, TTL: 24 * time.Hour,
		DNS: []string{"wardend", "wardend." + o.namespace, xds.ServerName(o.namespace), xds.ServerName(o.namespace) + ".cluster.local"}}
	for _, n := range o.serverNames {
		if ip := net.ParseIP(n); ip != nil {
			serving.IPs = append(serving.IPs, ip)
		} else {
			serving.DNS = append(serving.DNS, n)
		}
	}
	// Every configuration problem, from decoding or translation, is logged once, counted
	// in warden_config_errors and shown in /debug/syncz by the server; in Kubernetes
	// mode it also becomes an Event on its object.
	var onProblems func([]xds.ConfigProblem)
	if ev, ok := src.(interface{ ReportDiagnostics([]watch.Diagnostic) }); ok {
		onProblems = func(ps []xds.ConfigProblem) {
			ds := make([]watch.Diagnostic, len(ps))
			for i, p := range ps {
				ds[i] = p.Diagnostic
			}
			ev.ReportDiagnostics(ds)
		}
	}
	srv := xds.New(xds.Options{
		Log:              log,
		Auth:             auth,
		Secrets:          &xds.CertSecrets{CA: ca, Store: store},
		Replica:          o.replica,
		Metrics:          metrics,
		ServerCert:       serving.Get,
		OnProblems:       onProblems,
		NoAccessLogs:     !o.accessLogs,
		AccessLogEntries: o.accessLogEntries,
		AccessLogBytes:   o.accessLogBytes,
		AccessLogRate:    o.accessLogRate,
	})
	srv.RegisterCertMetrics(store, ca)
	var operators *xds.OperatorAuth
	if kubeMode(o) { // operators' tokens: the CSDS fleet view, and the debug API when it is exposed
		if operators, err = newOperatorAuth(o, log, cachedTokenReviews(auth)); err != nil {
			return err
		}
		srv.SetOperatorAuth(operators)
	}
	// The trust domain is fixed at start: the certificates carry it, so translation
	// keeps it too until a restart (the Input says so in a diagnostic).
	trustDomain := ca.TrustDomain().String()
	srv.SetInput(first.WithTrustDomain(trustDomain))
	log.Info("configuration loaded", "version", first.Version, "trustDomain", trustDomain, "problems", len(first.Diagnostics))

	lis, err := net.Listen("tcp", o.xdsAddr)
	if err != nil {
		return fmt.Errorf("xDS listen %s: %w", o.xdsAddr, err)
	}
	dlis, err := net.Listen("tcp", o.debugAddr)
	if err != nil {
		return fmt.Errorf("debug listen %s: %w", o.debugAddr, err)
	}
	debugH := srv.DebugHandler()
	if debugAuth { // never bearer tokens over plaintext
		debugH = operators.Protect(debugH)
		dlis = tls.NewListener(dlis, &tls.Config{MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return serving.Get() }})
	}
	servers := []*http.Server{serveHTTP(dlis, debugH, errc)}
	metricsAt := "off"
	if o.metricsAddr != "" {
		mlis, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listen %s: %w", o.metricsAddr, err)
		}
		servers, metricsAt = append(servers, serveHTTP(mlis, srv.MetricsHandler(), errc)), mlis.Addr().String()
	}
	// Kubernetes mode: the sidecar injector, its webhook's caBundle and the root in every
	// namespace; released says the publisher Lease was handed back.
	var released <-chan struct{}
	if kubeMode(o) {
		c, err := newKubeClients(o, log)
		if err != nil {
			return err
		}
		hs, rel, err := startInjector(ctx, o, c.client, ca.RootPEM(), serving.Get, log, errc)
		if err != nil {
			return err
		}
		released = rel
		if hs != nil {
			servers = append(servers, hs)
		}
	}
	log.Info("wardend serving", "xds", lis.Addr().String(), "debug", dlis.Addr().String(), "debugAuth", debugAuth,
		"metrics", metricsAt, "stateDir", o.stateDir, "identity", wid.String())

	go func() { errc <- srv.Serve(ctx, lis) }()
	go store.RunRotation(ctx, func(ids []spiffeid.ID) {
		log.Info("workload certificates rotated", "count", len(ids))
		srv.Refresh()
	})
	for {
		select {
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, hs := range servers {
				_ = hs.Shutdown(shut)
			}
			if released != nil { // hand the publisher Lease on at once, not after it expires
				select {
				case <-released:
				case <-shut.Done():
				}
			}
			return nil
		case in := <-inputs:
			srv.SetInput(in.WithTrustDomain(trustDomain))
			log.Info("configuration reloaded", "version", in.Version, "problems", len(in.Diagnostics))
		case err := <-errc:
			if err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}

// serveHTTP serves h on lis in the background; errors other than shutdown go to errc.
func serveHTTP(lis net.Listener, h http.Handler, errc chan<- error) *http.Server {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	return hs
}

// debugNeedsAuth says whether the debug API must check operators' tokens: when it is
// reachable beyond this host, or when --debug-auth=kubernetes asks. Directory mode has
// no Kubernetes to ask, so there it serves loopback only.
func debugNeedsAuth(o options) (bool, error) {
	if o.debugAuth != "auto" && o.debugAuth != "kubernetes" {
		return false, fmt.Errorf("--debug-auth %q: want auto or kubernetes", o.debugAuth)
	}
	a, err := net.ResolveTCPAddr("tcp", o.debugAddr)
	need := err != nil || a.IP == nil || !a.IP.IsLoopback() || o.debugAuth == "kubernetes"
	if need && !kubeMode(o) {
		return false, fmt.Errorf("--debug-addr %s (--debug-auth %s): the debug API shows every proxy's configuration, and in "+
			"directory mode there is no Kubernetes to authenticate operators with; serve it on loopback "+
			"(--debug-addr 127.0.0.1:15014) and reach it from this host", o.debugAddr, o.debugAuth)
	}
	return need, nil
}

// newOperatorAuth checks operators' bearer tokens with TokenReview and
// SubjectAccessReview (get warden.io/debug/<endpoint> in wardend's namespace).
// Reviews go through the proxies' TokenReview cache when there is one.
func newOperatorAuth(o options, log *slog.Logger, cache *xds.TokenReviewCache) (*xds.OperatorAuth, error) {
	c, err := newKubeClients(o, log)
	if err != nil {
		return nil, err
	}
	var reviews authnclient.TokenReviewInterface = c.client.AuthenticationV1().TokenReviews()
	if cache != nil {
		reviews = cache
	}
	return &xds.OperatorAuth{Reviews: reviews, Access: c.client.AuthorizationV1().SubjectAccessReviews(),
		Namespace: o.namespace, Audiences: []string{o.kube.audience}, Log: log.With("component", "operator-auth")}, nil
}

// loadTrust loads the mesh CA and the proxy authenticator: from the state directory in
// directory mode, from Secrets in wardend's namespace in Kubernetes mode.
func loadTrust(ctx context.Context, o options, trustDomain string, log *slog.Logger) (*certs.CA, xds.Authenticator, error) {
	if kubeMode(o) {
		return loadKubeTrust(ctx, o, trustDomain, log)
	}
	ca, err := certs.LoadOrCreateCA(o.stateDir, trustDomain, time.Now, certs.WithStateLogger(log))
	if err != nil {
		return nil, nil, fmt.Errorf("mesh CA: %w", err)
	}
	signer, err := certs.LoadOrCreateTokenKey(o.stateDir, certs.WithStateLogger(log))
	if err != nil {
		return nil, nil, fmt.Errorf("token key: %w", err)
	}
	return ca, &xds.BootstrapTokenAuth{Signer: signer}, nil
}
