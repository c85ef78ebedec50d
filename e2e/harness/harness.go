// Package harness runs a small Warden mesh for end-to-end tests and the demo: wardend
// on the host, pods as network namespaces (e2e/cluster), each with the test app and,
// when injected, a stock Envoy sidecar bootstrapped by `wardenctl bootstrap` behind the
// capture rules `wardenctl capture apply` installs.
package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wardenmesh/warden/e2e/cluster"
)

// ProxyUID is the uid sidecar Envoys run as; capture rules exclude it.
const ProxyUID = 1337

// XDSPort is wardend's xDS port, excluded from capture.
const XDSPort = 15012

// Binaries locates the programs under test.
type Binaries struct {
	Wardend, Wardenctl, App, Envoy string
}

// FindBinaries uses WARDEN_BIN (a folder with wardend, wardenctl, warden-e2e-app) or
// builds them into dir, and finds stock Envoy. The programs that run as the proxy's uid
// (Envoy, and the app for tls-peer) are staged where that uid can execute them.
func FindBinaries(ctx context.Context, dir string) (Binaries, error) {
	b, err := findBinaries(ctx, dir)
	if err != nil {
		return b, err
	}
	if b.Envoy, err = cluster.StageForProxy(b.Envoy); err != nil {
		return b, fmt.Errorf("stage envoy: %w", err)
	}
	if b.App, err = cluster.StageForProxy(b.App); err != nil {
		return b, fmt.Errorf("stage the test app: %w", err)
	}
	return b, nil
}

func findBinaries(ctx context.Context, dir string) (Binaries, error) {
	envoy, err := cluster.EnvoyPath()
	if err != nil {
		return Binaries{}, err
	}
	b := Binaries{Envoy: envoy}
	if bin := os.Getenv("WARDEN_BIN"); bin != "" {
		b.Wardend, b.Wardenctl, b.App = filepath.Join(bin, "wardend"), filepath.Join(bin, "wardenctl"), filepath.Join(bin, "warden-e2e-app")
		for _, p := range []string{b.Wardend, b.Wardenctl, b.App} {
			if _, err := os.Stat(p); err != nil {
				return Binaries{}, fmt.Errorf("WARDEN_BIN=%s lacks %s: run `make build`", bin, filepath.Base(p))
			}
		}
		return b, nil
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		return Binaries{}, err
	}
	b.Wardend, b.Wardenctl, b.App = filepath.Join(dir, "wardend"), filepath.Join(dir, "wardenctl"), filepath.Join(dir, "warden-e2e-app")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./cmd/wardend", "./cmd/wardenctl", "./e2e/app")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("go build: %v\n%s", err, out)
	}
	// The app binary is named after its folder; give it its real name.
	if err := os.Rename(filepath.Join(dir, "app"), b.App); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Binaries{}, err
	}
	return b, nil
}

// Options configure a Mesh.
type Options struct {
	Log *slog.Logger
	// Delta makes sidecars use incremental xDS.
	Delta bool
	// WardendArgs are extra wardend flags (e.g. --workload-cert-ttl).
	WardendArgs []string
}

// Mesh is one running wardend plus its pods.
type Mesh struct {
	Cluster   *cluster.Cluster
	Bin       Binaries
	ConfigDir string
	StateDir  string
	XDSAddr   string
	DebugAddr string
	// Kubeconfig, when set before StartWardend, makes wardend serve that cluster
	// (Kubernetes mode, --kubeconfig) instead of ConfigDir.
	Kubeconfig string
	// Kubelet runs the pods started from an injected Pod spec (PodOptions.Injected);
	// nil until the first one starts, then NewKubelet's, unless set before.
	Kubelet *Kubelet

	log     *slog.Logger
	opts    Options
	wardend *exec.Cmd
	wlog    string
	wdone   chan struct{}

	mu   sync.Mutex
	pods map[string]*Pod
}

// Start creates the cluster and starts wardend on an empty configuration folder
// (plus whatever files the caller writes before calling WaitReady).
func Start(ctx context.Context, opts Options) (*Mesh, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := cluster.New(ctx, cluster.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	m := &Mesh{Cluster: c, log: log, opts: opts, pods: map[string]*Pod{}}
	if err := m.start(ctx); err != nil {
		return nil, errors.Join(err, m.Close())
	}
	return m, nil
}

func (m *Mesh) start(ctx context.Context) error {
	work := m.Cluster.WorkDir()
	bin, err := FindBinaries(ctx, filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	m.Bin = bin
	m.ConfigDir = filepath.Join(work, "config")
	m.StateDir = filepath.Join(work, "state")
	for _, d := range []string{m.ConfigDir, m.StateDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	m.XDSAddr = net.JoinHostPort(m.Cluster.HostIP(), strconv.Itoa(XDSPort))
	port, err := freePort()
	if err != nil {
		return err
	}
	m.DebugAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return nil
}

// StartWardend launches wardend on the configuration folder, or on the cluster of
// Kubeconfig when it is set.
func (m *Mesh) StartWardend(ctx context.Context) error {
	m.wlog = filepath.Join(m.Cluster.WorkDir(), "wardend.log")
	lf, err := os.Create(m.wlog)
	if err != nil {
		return err
	}
	source := []string{"--config-dir", m.ConfigDir}
	if m.Kubeconfig != "" {
		// The injection webhook on an ephemeral loopback port: its default :15017 would
		// collide between runs in parallel.
		source = []string{"--kubeconfig", m.Kubeconfig, "--inject-addr", "127.0.0.1:0"}
	}
	args := append(source, "--state-dir", m.StateDir,
		"--xds-addr", m.XDSAddr, "--debug-addr", m.DebugAddr, "--metrics-addr", "127.0.0.1:0", "--replica", "wardend-0", "--log-level", "debug")
	args = append(args, m.opts.WardendArgs...)
	cmd := exec.Command(m.Bin.Wardend, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// wardend must not outlive the run, even when the runner is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start wardend: %w", err)
	}
	m.wardend = cmd
	m.wdone = make(chan struct{})
	go func() { cmd.Wait(); lf.Close(); close(m.wdone) }()
	return m.waitFor(ctx, 30*time.Second, "wardend ready", func() error {
		select {
		case <-m.wdone:
			return backoffStop{fmt.Errorf("wardend exited:\n%s", m.WardendLogTail(30))}
		default:
		}
		out, err := exec.CommandContext(ctx, "curl", "-fsS", "http://"+m.DebugAddr+"/readyz").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

// RestartWardend stops wardend (SIGINT, as a rollout would) and starts it again with
// the same state, folder and addresses; proxies reconnect on their own.
func (m *Mesh) RestartWardend(ctx context.Context) error {
	if m.wardend != nil && m.wardend.Process != nil {
		_ = m.wardend.Process.Signal(os.Interrupt)
		select {
		case <-m.wdone:
		case <-time.After(10 * time.Second):
			_ = m.wardend.Process.Kill()
			<-m.wdone
		}
	}
	// Keep the earlier run's log beside the new one.
	if prev, err := os.ReadFile(m.wlog); err == nil {
		_ = os.WriteFile(m.wlog+".previous", prev, 0o644)
	}
	return m.StartWardend(ctx)
}

// WardendLog returns wardend's whole log (of the current run).
func (m *Mesh) WardendLog() string {
	b, _ := os.ReadFile(m.wlog)
	return string(b)
}

// WriteConfig atomically writes one manifest file into wardend's folder.
func (m *Mesh) WriteConfig(name, yaml string) error {
	tmp := filepath.Join(m.ConfigDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(yaml), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(m.ConfigDir, name))
}

// RemoveConfig deletes one manifest file.
func (m *Mesh) RemoveConfig(name string) error {
	return os.Remove(filepath.Join(m.ConfigDir, name))
}

// WardendLogTail returns wardend's last n log lines.
func (m *Mesh) WardendLogTail(n int) string {
	b, err := os.ReadFile(m.wlog)
	if err != nil {
		return ""
	}
	return tail(string(b), n)
}

// Close stops everything and removes what the run created.
func (m *Mesh) Close() error {
	if m.wardend != nil && m.wardend.Process != nil {
		_ = m.wardend.Process.Signal(os.Interrupt)
		select {
		case <-m.wdone:
		case <-time.After(5 * time.Second):
			_ = m.wardend.Process.Kill()
			<-m.wdone
		}
	}
	return m.Cluster.Close()
}

// backoffStop ends waitFor early with its error.
type backoffStop struct{ error }

// waitFor polls f until it succeeds or the deadline passes; the last error is reported.
func (m *Mesh) waitFor(ctx context.Context, d time.Duration, what string, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	delay := 20 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		var stop backoffStop
		if errors.As(err, &stop) {
			return stop.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Status runs `wardenctl status -o json` and returns its rows.
func (m *Mesh) Status(ctx context.Context) ([]StatusRow, error) {
	out, err := exec.CommandContext(ctx, m.Bin.Wardenctl, "status", "--server", m.DebugAddr, "-o", "json").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("wardenctl status: %v: %s", err, ee.Stderr)
		}
		return nil, err
	}
	var rows []StatusRow
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("wardenctl status output: %w", err)
	}
	return rows, nil
}

// StatusRow is one proxy in `wardenctl status -o json`.
type StatusRow struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Synced    bool   `json:"synced"`
	Types     map[string]struct {
		Status   string `json:"status"`
		Sent     string `json:"sent"`
		Intended string `json:"intended"`
		Error    string `json:"error"`
	} `json:"types"`
}

// WaitSynced waits until exactly the expected proxies are connected and every one is
// SYNCED on the configuration wardend currently intends, and returns how long it took.
// inputVersion, when set, must be the input wardend serves (so a wait right after a
// file change does not pass on the old configuration).
func (m *Mesh) WaitSynced(ctx context.Context, want []string, d time.Duration) (time.Duration, error) {
	start := time.Now()
	err := m.waitFor(ctx, d, "every proxy SYNCED", func() error {
		rows, err := m.Status(ctx)
		if err != nil {
			return err
		}
		got := map[string]StatusRow{}
		for _, r := range rows {
			got[r.Name+"."+r.Namespace] = r
		}
		for _, w := range want {
			r, ok := got[w]
			if !ok {
				return fmt.Errorf("proxy %s not connected", w)
			}
			if !r.Synced {
				return fmt.Errorf("proxy %s not synced: %+v", w, r.Types)
			}
		}
		if len(got) != len(want) {
			return fmt.Errorf("%d proxies connected, want %d", len(got), len(want))
		}
		return nil
	})
	return time.Since(start), err
}

// InputVersion returns the version of the input wardend serves.
func (m *Mesh) InputVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "curl", "-fsS", "http://"+m.DebugAddr+"/debug/inputz").Output()
	if err != nil {
		return "", err
	}
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return "", err
	}
	return v.Version, nil
}

// WaitInputChange waits until wardend serves an input other than prev.
func (m *Mesh) WaitInputChange(ctx context.Context, prev string, d time.Duration) error {
	return m.waitFor(ctx, d, "wardend to load the new configuration", func() error {
		v, err := m.InputVersion(ctx)
		if err != nil {
			return err
		}
		if v == prev {
			return errors.New("still on version " + prev)
		}
		return nil
	})
}

// WaitInputVersion waits until wardend serves the input version want.
func (m *Mesh) WaitInputVersion(ctx context.Context, want string, d time.Duration) error {
	return m.waitFor(ctx, d, "wardend to serve input version "+want, func() error {
		v, err := m.InputVersion(ctx)
		if err != nil {
			return err
		}
		if v != want {
			return errors.New("on version " + v)
		}
		return nil
	})
}
