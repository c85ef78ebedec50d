package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardenmesh/warden/xds"
)

// wardend is one wardend process in Kubernetes mode.
type wardend struct {
	cmd       *exec.Cmd
	log       string
	xdsAddr   string
	debugAddr string
	metrics   string // --metrics-addr: /metrics, /healthz, /readyz without a credential
	inject    string // --inject-addr: the sidecar injection webhook (HTTPS, /inject)
	done      chan struct{}
}

func loopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startWardend(t *testing.T, ctx context.Context, bin, kubeconfig, dir string, extraArgs ...string) *wardend {
	t.Helper()
	w := &wardend{log: filepath.Join(dir, "wardend.log"), xdsAddr: loopbackAddr(t), debugAddr: loopbackAddr(t),
		metrics: loopbackAddr(t), inject: loopbackAddr(t), done: make(chan struct{})}
	lf, err := os.Create(w.log)
	if err != nil {
		t.Fatal(err)
	}
	w.cmd = exec.Command(bin, "--kubeconfig", kubeconfig, "--namespace", "warden-system", "--replica", "wardend-e2e",
		"--xds-addr", w.xdsAddr, "--debug-addr", w.debugAddr, "--server-name", "127.0.0.1",
		"--state-dir", filepath.Join(dir, "unused-state"), "--log-level", "debug", "--metrics-addr", w.metrics,
		"--inject-addr", w.inject)
	w.cmd.Args = append(w.cmd.Args, extraArgs...)
	w.cmd.Stdout, w.cmd.Stderr = lf, lf
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.cmd.Wait(); lf.Close(); close(w.done) }()
	t.Cleanup(func() {
		w.stop()
		if t.Failed() {
			t.Logf("--- wardend log (tail) ---\n%s", w.tail(60))
		}
	})
	waitFor(t, ctx, 60*time.Second, "wardend ready", func() error {
		select {
		case <-w.done:
			t.Fatalf("wardend exited:\n%s", w.tail(40))
		default:
		}
		_, err := httpGet(ctx, "http://"+w.metrics+"/readyz") // plain HTTP even when the debug API is HTTPS
		return err
	})
	return w
}

// stop interrupts wardend and waits until it has exited (SIGKILL after 10 s); a
// stopped wardend stays stopped.
func (w *wardend) stop() {
	_ = w.cmd.Process.Signal(os.Interrupt)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

func (w *wardend) tail(n int) string {
	data, _ := os.ReadFile(w.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (w *wardend) get(ctx context.Context, path string) ([]byte, error) {
	return httpGet(ctx, "http://"+w.debugAddr+path)
}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, res.Status, body)
	}
	return body, nil
}

func (w *wardend) syncz(t *testing.T, ctx context.Context) xds.SynczResponse {
	t.Helper()
	body, err := w.get(ctx, "/debug/syncz")
	if err != nil {
		t.Fatal(err)
	}
	var r xds.SynczResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("syncz: %v", err)
	}
	return r
}

// proxyStatus returns one proxy's status, or false when it is not connected.
func proxyStatus(r xds.SynczResponse, id string) (xds.ProxyStatus, bool) {
	for _, p := range r.Proxies {
		if p.ID == id {
			return p, true
		}
	}
	return xds.ProxyStatus{}, false
}

// synced reports why a proxy is not SYNCED on every type, or nil.
func synced(r xds.SynczResponse, id string) error {
	p, ok := proxyStatus(r, id)
	if !ok {
		return fmt.Errorf("proxy %s is not connected", id)
	}
	if len(p.Types) == 0 {
		return fmt.Errorf("proxy %s has no types yet", id)
	}
	for typ, st := range p.Types {
		if st.Status != xds.StatusSynced {
			return fmt.Errorf("proxy %s %s is %s (%s)", id, typ, st.Status, st.Error)
		}
	}
	return nil
}

// pushes sums what wardend sent a proxy.
func pushes(r xds.SynczResponse, id string) uint64 {
	p, _ := proxyStatus(r, id)
	var n uint64
	for _, st := range p.Types {
		n += st.Pushes
	}
	return n
}

// waitFor polls check (a running process's state) until it returns nil.
func waitFor(t *testing.T, ctx context.Context, d time.Duration, what string, check func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = check(); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s: %v", d, what, last)
		case <-tick.C:
		}
	}
}
