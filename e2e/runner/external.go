package runner

import (
	"context"
	"fmt"
	"strconv"

	"github.com/wardenmesh/warden/e2e/harness"
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
		if err := w.mesh.StartPod(ctx, p, harness.PodOptions{HTTPPorts: []uint32{e.ExternalPort()}}); err != nil {
			return fmt.Errorf("external host %s: %w", e.Name, err)
		}
		if err := w.mesh.WaitAppReady(ctx, p); err != nil {
			return fmt.Errorf("external host %s: %w", e.Name, err)
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
