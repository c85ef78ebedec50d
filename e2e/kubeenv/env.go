package kubeenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Options configure a control plane.
type Options struct {
	// APIServer is the kube-apiserver binary; default $KUBE_APISERVER, else
	// .cache/bin/kube-apiserver in the repository (built by `make deps`).
	APIServer string
	// Etcd is the etcd binary; default "etcd" from PATH (Debian's etcd-server).
	Etcd string
	// WorkDir keeps data and logs; a temporary directory, removed by Stop, when empty.
	WorkDir string
	// ServiceCIDR is the range Services get their clusterIP from (--service-cluster-ip-range);
	// default 10.96.0.0/16. A caller that routes Service IPs (e2e/cluster) passes its own.
	ServiceCIDR string
	// QPS and Burst limit the admin clients (default 200 and 400); a caller that creates
	// thousands of objects (e2e/cmd/benchkube) raises them.
	QPS   float32
	Burst int
	Log   *slog.Logger
}

// DefaultServiceCIDR is the Service range when Options.ServiceCIDR is empty.
const DefaultServiceCIDR = "10.96.0.0/16"

// Env is a running etcd plus kube-apiserver, and admin clients for it.
type Env struct {
	// Config, Client and Dynamic act as a cluster admin (system:masters).
	Config  *rest.Config
	Client  kubernetes.Interface
	Dynamic dynamic.Interface

	opts              Options
	dir               string
	ownDir            bool
	pki               *pki
	etcdPort, apiPort int
	etcd, apiserver   *process
	mapper            *restmapper.DeferredDiscoveryRESTMapper
	log               *slog.Logger
}

// Start runs etcd and kube-apiserver and waits until the API server is ready.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	bin, err := apiServerBinary(opts.APIServer)
	if err != nil {
		return nil, err
	}
	opts.APIServer = bin
	if opts.ServiceCIDR == "" {
		opts.ServiceCIDR = DefaultServiceCIDR
	}
	if opts.Etcd == "" {
		if opts.Etcd, err = exec.LookPath("etcd"); err != nil {
			return nil, errors.New("etcd not found: run `make deps` (Debian's etcd-server)")
		}
	}
	e := &Env{opts: opts, dir: opts.WorkDir, log: opts.Log}
	if e.dir == "" {
		if e.dir, err = os.MkdirTemp("", "warden-kubeenv-"); err != nil {
			return nil, err
		}
		e.ownDir = true
	}
	if err := e.start(ctx); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

func (e *Env) start(ctx context.Context) error {
	var err error
	if e.pki, err = newPKI(e.dir); err != nil {
		return fmt.Errorf("kubeenv pki: %w", err)
	}
	if e.etcdPort, err = freePort(); err != nil {
		return err
	}
	if e.apiPort, err = freePort(); err != nil {
		return err
	}
	if err := e.startEtcd(); err != nil {
		return err
	}
	e.Config = &rest.Config{
		Host:            e.URL(),
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: e.pki.caPEM},
		QPS:             200, Burst: 400,
	}
	if e.opts.QPS > 0 {
		e.Config.QPS, e.Config.Burst = e.opts.QPS, max(e.opts.Burst, 1)
	}
	if e.Client, err = kubernetes.NewForConfig(e.Config); err != nil {
		return err
	}
	if e.Dynamic, err = dynamic.NewForConfig(e.Config); err != nil {
		return err
	}
	e.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(e.Client.Discovery()))
	return e.StartAPIServer(ctx)
}

func apiServerBinary(path string) (string, error) {
	if path == "" {
		path = os.Getenv("KUBE_APISERVER")
	}
	if path == "" {
		dir, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for ; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				if _, err := os.Stat(filepath.Join(dir, "e2e")); err == nil {
					break
				}
			}
			if dir == filepath.Dir(dir) {
				return "", errors.New("kube-apiserver: cannot find the repository root; set KUBE_APISERVER")
			}
		}
		path = filepath.Join(dir, ".cache", "bin", "kube-apiserver")
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("kube-apiserver not found at %s: run `make deps` to build it", path)
	}
	return path, nil
}

func (e *Env) startEtcd() error {
	peer, err := freePort()
	if err != nil {
		return err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(e.etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	e.etcd, err = startProcess("etcd", filepath.Join(e.dir, "etcd.log"), e.opts.Etcd,
		"--name=e2e", "--data-dir="+filepath.Join(e.dir, "etcd"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=e2e="+peerURL, "--unsafe-no-fsync", "--logger=zap", "--log-level=warn")
	return err
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on the same port,
// certificates and etcd, and waits until it is ready.
func (e *Env) StartAPIServer(ctx context.Context) error {
	if e.apiserver != nil && !e.apiserver.exited() {
		return errors.New("kube-apiserver is already running")
	}
	start := time.Now()
	var err error
	e.apiserver, err = startProcess("kube-apiserver", filepath.Join(e.dir, "kube-apiserver.log"), e.opts.APIServer,
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(e.etcdPort),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(e.apiPort),
		"--cert-dir="+filepath.Join(e.dir, "apiserver-certs"),
		"--tls-cert-file="+e.pki.servingCert, "--tls-private-key-file="+e.pki.servingKey,
		"--token-auth-file="+e.pki.tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+e.pki.saPublicKey,
		"--service-account-signing-key-file="+e.pki.saSigningKey,
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range="+e.opts.ServiceCIDR,
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"-v=0")
	if err != nil {
		return err
	}
	if err := e.waitReady(ctx); err != nil {
		return err
	}
	e.log.Info("kube-apiserver ready", "url", e.URL(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// StopAPIServer stops kube-apiserver only; etcd keeps the data.
func (e *Env) StopAPIServer() error {
	return e.apiserver.stop(20 * time.Second)
}

func (e *Env) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if e.apiserver.exited() {
			return fmt.Errorf("kube-apiserver exited: %v\n%s", e.apiserver.err, e.apiserver.tail())
		}
		if e.etcd.exited() {
			return fmt.Errorf("etcd exited: %v\n%s", e.etcd.err, e.etcd.tail())
		}
		body, err := e.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready: %v (last: %v)\n%s", ctx.Err(), last, e.apiserver.tail())
		case <-tick.C:
		}
	}
}

// URL is the API server's address.
func (e *Env) URL() string { return "https://127.0.0.1:" + strconv.Itoa(e.apiPort) }

// CAPEM is the CA that signed the API server's serving certificate.
func (e *Env) CAPEM() []byte { return e.pki.caPEM }

// Dir is where the data and the logs (etcd.log, kube-apiserver.log) are.
func (e *Env) Dir() string { return e.dir }

// Stop stops both processes and removes the work directory if Start created it.
func (e *Env) Stop() error {
	err := errors.Join(e.apiserver.stop(20*time.Second), e.etcd.stop(10*time.Second))
	if e.ownDir {
		err = errors.Join(err, os.RemoveAll(e.dir))
	}
	return err
}
