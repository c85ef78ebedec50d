package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/e2e/xdsload"
	"github.com/wardenmesh/warden/xds"
)

// controlPlane is one xDS server under test, run as a process against the API server.
type controlPlane interface {
	name() string
	start(ctx context.Context, env *kubeenv.Env, work string) error
	fleet() xdsload.Config
	proxy(p *pod) (*xdsload.Proxy, error)
	pid() int
	// rotates is whether the server pushes rotated certificates over SDS (istiod leaves
	// that to the istio-agent beside each Envoy).
	rotates() bool
	heap(file string) error
	stop()
	logTail() string
}

// proc is a child process whose output goes to a log file.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(logPath string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) tail() string {
	if p == nil {
		return ""
	}
	data, _ := os.ReadFile(p.log)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// waitHTTP polls url until it answers 200, failing early when the process exits.
func (p *proc) waitHTTP(ctx context.Context, url string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited:\n%s", filepath.Base(p.cmd.Path), p.tail())
		default:
		}
		r, err := http.Get(url)
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, r.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %v (last: %v)\n%s", ctx.Err(), last, p.tail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func fetchTo(url, file string) error {
	r, err := http.Get(url)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	if r.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, r.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, r.Body)
	return err
}

func loopback() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// wardendCP is wardend in Kubernetes mode with its ServiceAccount's rights (deploy/).
type wardendCP struct {
	bin                             string
	certTTL                         time.Duration
	xdsAddr, debugAddr, metricsAddr string
	roots                           *x509.CertPool
	p                               *proc
}

func (w *wardendCP) name() string  { return "warden" }
func (w *wardendCP) rotates() bool { return true }
func (w *wardendCP) pid() int      { return w.p.cmd.Process.Pid }
func (w *wardendCP) stop()         { w.p.stop() }
func (w *wardendCP) logTail() string {
	return w.p.tail()
}

func (w *wardendCP) start(ctx context.Context, env *kubeenv.Env, work string) error {
	kc, err := env.ServiceAccountKubeconfig(ctx, kubeenv.WardendNamespace, kubeenv.WardendServiceAccount, 2*time.Hour)
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(work, "wardend.kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}
	w.xdsAddr, w.debugAddr, w.metricsAddr = loopback(), loopback(), loopback()
	w.p, err = startProc(filepath.Join(work, "wardend.log"), nil, w.bin, "--kubeconfig", kubeconfig,
		"--namespace", kubeenv.WardendNamespace, "--replica", "wardend-bench",
		"--xds-addr", w.xdsAddr, "--debug-addr", w.debugAddr, "--metrics-addr", w.metricsAddr,
		"--inject-addr", loopback(), "--server-name", "127.0.0.1", "--state-dir", filepath.Join(work, "unused-state"),
		"--workload-cert-ttl", w.certTTL.String(), "--log-level", "warn",
		"--kube-api-qps", "500", "--kube-api-burst", "1000")
	if err != nil {
		return err
	}
	if err := w.p.waitHTTP(ctx, "http://"+w.metricsAddr+"/readyz", 5*time.Minute); err != nil {
		return err
	}
	root, err := env.MeshRootPEM(ctx, kubeenv.WardendNamespace)
	if err != nil {
		return err
	}
	w.roots = x509.NewCertPool()
	if !w.roots.AppendCertsFromPEM(root) {
		return errors.New("the mesh root in warden-ca is not PEM")
	}
	return nil
}

func (w *wardendCP) fleet() xdsload.Config {
	return xdsload.Config{Addr: w.xdsAddr, TLS: &tls.Config{RootCAs: w.roots, ServerName: "127.0.0.1"}}
}

func (w *wardendCP) proxy(p *pod) (*xdsload.Proxy, error) {
	id := xds.Identity{Namespace: p.ns, ServiceAccount: p.name, Pod: p.name}
	md, err := xds.NodeMetadata(id, map[string]string{"app": p.name}, []string{p.ip}, false)
	if err != nil {
		return nil, err
	}
	return &xdsload.Proxy{NS: p.ns, App: p.name, Token: p.token, Node: &core.Node{Id: id.NodeID(), Metadata: md}}, nil
}

func (w *wardendCP) heap(file string) error {
	return fetchTo("http://"+w.debugAddr+"/debug/pprof/heap", file)
}

// istiodCP is istiod's pilot-discovery in its Kubernetes mode, serving plaintext xDS
// (its 15010) to the simulated sidecars, with an admin kubeconfig.
type istiodCP struct {
	bin                string
	grpcAddr, httpAddr string
	monitoring         string
	p                  *proc
}

func (i *istiodCP) name() string  { return "istiod" }
func (i *istiodCP) rotates() bool { return false }
func (i *istiodCP) pid() int      { return i.p.cmd.Process.Pid }
func (i *istiodCP) stop()         { i.p.stop() }
func (i *istiodCP) logTail() string {
	return i.p.tail()
}

func (i *istiodCP) start(ctx context.Context, env *kubeenv.Env, work string) error {
	kc, err := env.Kubeconfig(env.Config.BearerToken)
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(work, "istiod.kubeconfig")
	mesh := filepath.Join(work, "mesh.yaml")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(mesh, []byte("rootNamespace: istio-system\ntrustDomain: cluster.local\n"), 0o644); err != nil {
		return err
	}
	i.grpcAddr, i.httpAddr, i.monitoring = loopback(), loopback(), loopback()
	i.p, err = startProc(filepath.Join(work, "istiod.log"), []string{
		"POD_NAMESPACE=istio-system", "POD_NAME=istiod-bench", "REVISION=default", "KUBECONFIG=" + kubeconfig,
		"PILOT_ENABLE_GATEWAY_API=false", "INJECTION_WEBHOOK_CONFIG_NAME=", "VALIDATION_WEBHOOK_CONFIG_NAME=",
		"ISTIOD_CUSTOM_HOST=127.0.0.1", "PILOT_ENABLE_AMBIENT=false",
	}, i.bin, "discovery", "--kubeconfig", kubeconfig, "--meshConfig", mesh,
		"--networksConfig", filepath.Join(work, "no-mesh-networks.yaml"),
		"--grpcAddr", i.grpcAddr, "--httpAddr", i.httpAddr, "--monitoringAddr", i.monitoring,
		"--secureGRPCAddr", loopback(), "--httpsAddr", loopback(), "--domain", "cluster.local",
		"--kubernetesApiQPS", "500", "--kubernetesApiBurst", "1000", "--log_output_level", "default:warn")
	if err != nil {
		return err
	}
	return i.p.waitHTTP(ctx, "http://"+i.httpAddr+"/ready", 5*time.Minute)
}

func (i *istiodCP) fleet() xdsload.Config { return xdsload.Config{Addr: i.grpcAddr} }

// proxy is the node an istio-agent would send for the pod: Istio's node ID and metadata.
func (i *istiodCP) proxy(p *pod) (*xdsload.Proxy, error) {
	md, err := structpb.NewStruct(map[string]any{
		"NAMESPACE": p.ns, "SERVICE_ACCOUNT": p.name, "NAME": p.name, "WORKLOAD_NAME": p.name,
		"LABELS": map[string]any{"app": p.name}, "INSTANCE_IPS": p.ip, "ISTIO_VERSION": "1.31.0",
		"CLUSTER_ID": "Kubernetes", "MESH_ID": "cluster.local", "INTERCEPTION_MODE": "REDIRECT",
		"POD_PORTS": `[{"name":"http","containerPort":8080,"protocol":"TCP"}]`,
		"OWNER":     "kubernetes://apis/v1/namespaces/" + p.ns + "/pods/" + p.name,
	})
	if err != nil {
		return nil, err
	}
	id := strings.Join([]string{"sidecar", p.ip, p.name + "." + p.ns, p.ns + ".svc.cluster.local"}, "~")
	return &xdsload.Proxy{NS: p.ns, App: p.name, Node: &core.Node{Id: id, Metadata: md}}, nil
}

func (i *istiodCP) heap(file string) error {
	err := fetchTo("http://"+i.httpAddr+"/debug/pprof/heap", file)
	if err != nil {
		err = errors.Join(err, fetchTo("http://"+i.monitoring+"/debug/pprof/heap", file))
	}
	return err
}

// procStats are a process's resident memory and CPU time.
func procStats(pid int) (rssMB, cpuSec float64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
				rssMB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		if k := strings.LastIndexByte(s, ')'); k > 0 {
			f := strings.Fields(s[k+1:])
			if len(f) > 13 {
				ut, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				cpuSec = (ut + st) / 100 // USER_HZ
			}
		}
	}
	return rssMB, cpuSec
}
