package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
)

// syncTimeout bounds every wait for the mesh to converge.
const syncTimeout = 60 * time.Second

// reconcile makes the cluster match the applied objects, as a kubelet, kube-proxy and
// kube-dns would, hands the objects to wardend, and waits until every proxy is SYNCED
// on the new configuration. It returns how long the wait for convergence took.
func (w *world) reconcile(ctx context.Context) (time.Duration, error) {
	// Read before anything of this round can reach wardend (in Kubernetes mode a new
	// Pod object does, before its containers start).
	prev, err := w.mesh.InputVersion(ctx)
	if err != nil {
		return 0, err
	}
	in := w.build(nil)
	desired := w.desiredPods(in)
	pods := map[string]*harness.Pod{}
	var started []*harness.Pod
	for key, spec := range desired {
		p := w.mesh.Pod(spec.opts.Name + "." + spec.opts.Namespace)
		if p == nil {
			var err error
			if p, err = w.mesh.CreatePod(ctx, spec.opts.Namespace, spec.opts.Name); err != nil {
				return 0, err
			}
		}
		pods[key] = p
	}
	// Stop pods that are gone or changed (a new injection decision, labels, ports).
	for _, p := range w.mesh.Pods() {
		if p == w.outside || w.isExternal(p) {
			continue
		}
		spec, ok := desired[p.Opts.Namespace+"/"+p.Opts.Name]
		running := p.App != nil || p.Envoy != nil
		if running && (!ok || !spec.equal(podSpec{opts: p.Opts})) {
			if err := w.mesh.StopPod(ctx, p); err != nil {
				return 0, err
			}
		}
	}
	// As a kubelet does, start the containers as soon as the pod exists; wardend learns
	// of the pod's configuration afterwards, so what it fetches from apps (JWKS) is up.
	for key, spec := range desired {
		p := pods[key]
		if p.App != nil || p.Envoy != nil {
			continue
		}
		if w.mesh.Kubelet != nil && spec.opts.Sidecar && !spec.opts.Gateway {
			// -inject: the pod runs from its injected spec, as a kubelet would run it.
			if spec.opts.Injected, err = w.mesh.Inject(p, spec.opts, spec.annotations); err != nil {
				return 0, err
			}
		}
		if err := w.backend.preparePod(ctx, p, &spec); err != nil {
			return 0, err
		}
		if err := w.mesh.StartPod(ctx, p, spec.opts); err != nil {
			return 0, err
		}
		started = append(started, p)
	}
	for _, p := range started {
		if err := w.mesh.WaitAppReady(ctx, p); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	want, err := w.backend.publish(ctx, w, desired, pods)
	if err != nil {
		return 0, err
	}
	switch {
	case want.version != "":
		if err := w.mesh.WaitInputVersion(ctx, want.version, syncTimeout); err != nil {
			return 0, err
		}
	case want.changed:
		if err := w.mesh.WaitInputChange(ctx, prev, syncTimeout); err != nil {
			return 0, err
		}
	}
	var proxies []string
	for _, p := range w.mesh.Pods() {
		if p.Envoy != nil {
			proxies = append(proxies, p.ID())
		}
	}
	if _, err := w.mesh.WaitSynced(ctx, proxies, syncTimeout); err != nil {
		return 0, fmt.Errorf("mesh did not converge: %w", err)
	}
	synced := time.Since(start)
	if err := w.mesh.WaitDrained(ctx, syncTimeout); err != nil {
		return 0, err
	}
	return synced, nil
}
