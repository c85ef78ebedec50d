package runner

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/scenario"
)

// externalNamespace holds the pods of a scenario's external hosts (format "egress"):
// no mesh object names it, so they are neither proxies nor endpoints.
const externalNamespace = "external"

// startExternals starts one sidecar-less pod per external host, serving the default
// HTTP echo on its port, and waits until it answers.
func (w *world) startExternals(ctx context.Context) error {
	for i, e := range w.sc.Externals {
		p, err := w.mesh.CreatePod(ctx, externalNamespace, "ext-"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		if e.TLS != nil {
			if err := w.startTLSExternal(ctx, p, e); err != nil {
				return fmt.Errorf("external host %s: %w", e.Name, err)
			}
		} else {
			if err := w.mesh.StartPod(ctx, p, harness.PodOptions{HTTPPorts: []uint32{e.ExternalPort()}}); err != nil {
				return fmt.Errorf("external host %s: %w", e.Name, err)
			}
			if err := w.mesh.WaitAppReady(ctx, p); err != nil {
				return fmt.Errorf("external host %s: %w", e.Name, err)
			}
		}
		if w.externals == nil {
			w.externals = map[*harness.Pod]string{}
		}
		w.externals[p] = e.Name
	}
	return nil
}

// isExternal reports whether p is an external host's pod, which reconcile leaves alone.
func (w *world) isExternal(p *harness.Pod) bool {
	_, ok := w.externals[p]
	return ok
}

// addExternalHosts adds every external host's name to a pod's hosts entries.
func (w *world) addExternalHosts(hosts map[string]string) {
	for p, name := range w.externals {
		hosts[name] = p.IP()
	}
}

// startTLSExternal starts the app serving HTTPS with the scenario's certificate and
// polls, with a deadline, until it completes a TLS handshake and answers.
func (w *world) startTLSExternal(ctx context.Context, p *harness.Pod, e scenario.External) error {
	abs := func(f string) string {
		if filepath.IsAbs(f) {
			return f
		}
		return filepath.Join(w.sc.Dir, f)
	}
	port := strconv.Itoa(int(e.ExternalPort()))
	app, err := p.Start("app", 0, nil, w.mesh.Bin.App, "serve", "-http-ports", port,
		"-tls-cert", abs(e.TLS.Certificate), "-tls-key", abs(e.TLS.PrivateKey))
	if err != nil {
		return err
	}
	p.App = app
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := p.Exec(ctx, "curl", "-sSk", "--max-time", "2", "-o", "/dev/null", "https://127.0.0.1:"+port+"/healthz")
		if err == nil {
			return nil
		}
		select {
		case <-app.Exited():
			return fmt.Errorf("app exited: %s", app.LogTail(20))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("HTTPS app not answering: %v: %s", err, out)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
