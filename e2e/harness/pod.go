package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wardenmesh/warden/e2e/cluster"
)

// PodOptions describe one pod.
type PodOptions struct {
	Namespace      string
	Name           string
	ServiceAccount string
	Labels         map[string]string
	HTTPPorts      []uint32
	TCPPorts       []uint32
	AppConfig      any  // JSON-encodable app behaviour (forward/static/extAuthz); nil for the default echo
	Sidecar        bool // run a stock Envoy sidecar with capture rules
	Gateway        bool // Envoy is the only process, no capture (ingress gateway)
	Delta          bool // sidecar uses delta xDS
	// TokenFile and RootCertFile, when set, bootstrap Envoy with this service-account
	// token and mesh root (Kubernetes mode) instead of a token signed from StateDir.
	TokenFile, RootCertFile string
	// Injected, when set on a sidecar pod, is the injected Pod spec (inject.Pod) that
	// the mesh's Kubelet runs instead of the harness starting the app and Envoy itself.
	Injected *corev1.Pod
}

// Pod is a running pod of the mesh.
type Pod struct {
	*cluster.Pod
	Opts  PodOptions
	App   *cluster.Process
	Envoy *cluster.Process
	// Kube is the running Pod spec when the pod was started from its injected spec.
	Kube *KubePod
}

// ID is "<name>.<namespace>", the proxy's node id.
func (p *Pod) ID() string { return p.Opts.Name + "." + p.Opts.Namespace }

// AddPod creates the pod's network namespace and starts its app (and sidecar).
func (m *Mesh) AddPod(ctx context.Context, o PodOptions) (*Pod, error) {
	p, err := m.CreatePod(ctx, o.Namespace, o.Name)
	if err != nil {
		return nil, err
	}
	if err := m.StartPod(ctx, p, o); err != nil {
		return nil, err
	}
	return p, nil
}

// CreatePod creates the pod's network namespace only: its IP is known from here on,
// as a kubelet knows it before the containers start.
func (m *Mesh) CreatePod(ctx context.Context, namespace, name string) (*Pod, error) {
	cp, err := m.Cluster.AddPod(ctx, cluster.PodSpec{Namespace: namespace, Name: name})
	if err != nil {
		return nil, err
	}
	p := &Pod{Pod: cp, Opts: PodOptions{Namespace: namespace, Name: name}}
	m.mu.Lock()
	m.pods[p.ID()] = p
	m.mu.Unlock()
	return p, nil
}

// StartPod starts the pod's processes as o describes: the app unless it is a gateway,
// and Envoy (with capture rules for a sidecar) when it has one.
func (m *Mesh) StartPod(ctx context.Context, p *Pod, o PodOptions) error {
	if o.ServiceAccount == "" {
		o.ServiceAccount = "default"
	}
	o.Namespace, o.Name = p.Opts.Namespace, p.Opts.Name
	p.Opts = o
	if o.Injected != nil && o.Sidecar && !o.Gateway {
		return m.startInjected(ctx, p)
	}
	if !o.Gateway && len(o.HTTPPorts)+len(o.TCPPorts) > 0 {
		if err := m.startApp(p); err != nil {
			return err
		}
	}
	if o.Sidecar || o.Gateway {
		if err := m.startEnvoy(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// StopPod stops the pod's processes and removes its capture rules; the network
// namespace and IP stay, so StartPod can start it again with other options.
func (m *Mesh) StopPod(ctx context.Context, p *Pod) error {
	var errs []error
	if p.Kube != nil {
		p.Kube.Stop(ctx)
		p.Kube = nil
	}
	for _, pr := range []*cluster.Process{p.Envoy, p.App} {
		if pr != nil {
			if err := pr.Stop(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	p.Envoy, p.App = nil, nil
	if out, err := p.Exec(ctx, m.Bin.Wardenctl, "capture", "remove"); err != nil {
		errs = append(errs, fmt.Errorf("pod %s: wardenctl capture remove: %v: %s", p.ID(), err, out))
	}
	return errors.Join(errs...)
}

// TokenFile is where a directory-mode pod's credential is written (Envoy reads it on
// every xDS connection).
func (p *Pod) TokenFile() string {
	if p.Opts.TokenFile != "" {
		return p.Opts.TokenFile
	}
	return filepath.Join(p.Dir(), "warden-token")
}

// Pods returns every pod, sorted by id.
func (m *Mesh) Pods() []*Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Pod, 0, len(m.pods))
	for _, p := range m.pods {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}

func joinPorts(ps []uint32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

func (m *Mesh) startApp(p *Pod) error {
	args := []string{m.Bin.App, "serve", "-http-ports", joinPorts(p.Opts.HTTPPorts), "-tcp-ports", joinPorts(p.Opts.TCPPorts)}
	if p.Opts.AppConfig != nil {
		b, err := json.Marshal(p.Opts.AppConfig)
		if err != nil {
			return err
		}
		path := filepath.Join(p.Dir(), "app.json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		args = append(args, "-config", path)
	}
	app, err := p.Start("app", 0, nil, args...)
	if err != nil {
		return fmt.Errorf("pod %s: start app: %w", p.ID(), err)
	}
	p.App = app
	return nil
}

func (m *Mesh) startEnvoy(ctx context.Context, p *Pod) error {
	var labels []string
	for k, v := range p.Opts.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	bootPath := filepath.Join(p.Dir(), "envoy.json")
	// Envoy runs as its own uid: it owns its bootstrap and credential file (mode 0600).
	owner := strconv.Itoa(ProxyUID)
	args := []string{"bootstrap", "--namespace", p.Opts.Namespace, "--service-account", p.Opts.ServiceAccount,
		"--pod", p.Opts.Name, "--labels", strings.Join(labels, ","), "--ips", p.IP(),
		"--server", m.XDSAddr, "--token-owner", owner, "-o", bootPath}
	if p.Opts.TokenFile != "" {
		// Kubernetes mode: the pod's service-account token, as a projected volume would hold it.
		if err := os.Chown(p.Opts.TokenFile, ProxyUID, ProxyUID); err != nil {
			return err
		}
		if err := os.Chmod(p.Opts.TokenFile, 0o600); err != nil {
			return err
		}
		args = append(args, "--token-file", p.Opts.TokenFile, "--root-cert", p.Opts.RootCertFile)
	} else {
		args = append(args, "--sign-token", "--token-file", p.TokenFile(), "--state-dir", m.StateDir)
	}
	if p.Opts.Delta || m.opts.Delta {
		args = append(args, "--delta")
	}
	if p.Opts.Gateway {
		args = append(args, "--gateway")
	}
	if out, err := exec.CommandContext(ctx, m.Bin.Wardenctl, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("pod %s: wardenctl bootstrap: %v: %s", p.ID(), err, out)
	}
	if p.Opts.Sidecar && !p.Opts.Gateway {
		out, err := p.Exec(ctx, m.Bin.Wardenctl, "capture", "apply")
		if err != nil {
			return fmt.Errorf("pod %s: wardenctl capture apply: %v: %s", p.ID(), err, out)
		}
	}
	env, err := p.Start("envoy", ProxyUID, nil, m.Bin.Envoy, "-c", bootPath, "--disable-hot-restart",
		"--log-level", "warning", "--service-node", p.ID(), "--drain-time-s", "1")
	if err != nil {
		return fmt.Errorf("pod %s: start envoy: %w", p.ID(), err)
	}
	p.Envoy = env
	return nil
}

// Pod returns a pod by "<name>.<namespace>".
func (m *Mesh) Pod(id string) *Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pods[id]
}

// Result is what a request from inside a pod got.
type Result struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	// Headers are the response headers, names in lower case.
	Headers         map[string][]string `json:"headers,omitempty"`
	Error           string              `json:"error,omitempty"`
	ConnectionError bool                `json:"connectionError"`
}

func (r Result) String() string {
	if r.ConnectionError {
		return "connection error (" + r.Error + ")"
	}
	if r.Error != "" {
		return "error: " + r.Error
	}
	return strconv.Itoa(r.Status)
}

// Request sends one HTTP request from inside the pod (through its sidecar, when it has one).
func (m *Mesh) Request(ctx context.Context, from *Pod, method, url string, headers map[string]string) (Result, error) {
	args := []string{m.Bin.App, "request", "-url", url, "-method", method, "-timeout", "5s"}
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-header", k+"="+headers[k])
	}
	out, err := from.Exec(ctx, args...)
	if err != nil {
		return Result{}, fmt.Errorf("request from %s: %v: %s", from.ID(), err, out)
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		return Result{}, fmt.Errorf("request from %s: bad output %q: %w", from.ID(), out, err)
	}
	return r, nil
}

// WaitAppReady waits until the pod's app answers on its first HTTP port from inside the pod.
func (m *Mesh) WaitAppReady(ctx context.Context, p *Pod) error {
	if len(p.Opts.HTTPPorts) == 0 || p.App == nil {
		return nil
	}
	url := "http://127.0.0.1:" + strconv.Itoa(int(p.Opts.HTTPPorts[0])) + "/healthz"
	return m.waitFor(ctx, 15*time.Second, "app of "+p.ID(), func() error {
		select {
		case <-p.App.Exited():
			return backoffStop{fmt.Errorf("app of %s exited: %s", p.ID(), p.App.LogTail(20))}
		default:
		}
		r, err := m.Request(ctx, p, "GET", url, nil)
		if err != nil {
			return err
		}
		// Any HTTP answer means the app is up (an ext_authz app answers 403 to a probe).
		if r.Status == 0 {
			return errors.New("app did not answer: " + r.String())
		}
		return nil
	})
}

// EnvoyConfigDump returns the proxy's dynamic configuration from its admin config_dump
// (listeners, routes, clusters; the bootstrap is left out), from inside its pod.
func (m *Mesh) EnvoyConfigDump(ctx context.Context, p *Pod) (string, error) {
	var b strings.Builder
	for _, res := range []string{"dynamic_listeners", "dynamic_route_configs", "dynamic_active_clusters"} {
		out, err := p.Exec(ctx, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:15000/config_dump?resource="+res)
		if err != nil {
			return b.String(), fmt.Errorf("%v: %s", err, out)
		}
		b.Write(out)
	}
	return b.String(), nil
}

// WaitDrained waits until no Envoy of the mesh still drains old listeners or filter
// chains. A configuration change reaches new connections once it is ACKed, but
// connections accepted by a replaced filter chain keep its old behaviour (no RBAC, say)
// until they drain: only then has every request the new behaviour.
func (m *Mesh) WaitDrained(ctx context.Context, d time.Duration) error {
	return m.waitFor(ctx, d, "old listeners and filter chains to drain", func() error {
		for _, p := range m.Pods() {
			if p.Envoy == nil {
				continue
			}
			out, err := p.Exec(ctx, "curl", "-sS", "--max-time", "5",
				"http://127.0.0.1:15000/stats?filter=^listener_manager.total_(filter_chains|listeners)_draining$")
			if err != nil {
				return fmt.Errorf("%s admin stats: %v: %s", p.ID(), err, out)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if k, v, ok := strings.Cut(line, ": "); ok && strings.TrimSpace(v) != "0" {
					return fmt.Errorf("%s: %s = %s", p.ID(), k, v)
				}
			}
		}
		return nil
	})
}

// EnvoyCounters reads the counters of the pod's Envoy from its admin /stats: name to
// value. Gauges and histograms are left out (a counter line is "name: <integer>").
func (m *Mesh) EnvoyCounters(ctx context.Context, p *Pod) (map[string]int64, error) {
	if p.Envoy == nil {
		return nil, fmt.Errorf("%s runs no Envoy", p.ID())
	}
	out, err := p.Exec(ctx, "curl", "-sS", "--fail", "--max-time", "5", "http://127.0.0.1:15000/stats?type=Counters")
	if err != nil {
		return nil, fmt.Errorf("%s admin stats: %v: %s", p.ID(), err, out)
	}
	got := map[string]int64{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			got[k] = n
		}
	}
	return got, nil
}

// Diagnose collects what a person needs to see when something failed.
func (m *Mesh) Diagnose(ctx context.Context) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- wardend log (tail) ---\n%s\n", m.WardendLogTail(40))
	for _, p := range m.Pods() {
		if p.Envoy != nil {
			fmt.Fprintf(&b, "--- envoy %s log (tail) ---\n%s\n", p.ID(), p.Envoy.LogTail(20))
		}
		if p.App != nil {
			fmt.Fprintf(&b, "--- app %s log (tail) ---\n%s\n", p.ID(), p.App.LogTail(10))
		}
	}
	return b.String()
}
