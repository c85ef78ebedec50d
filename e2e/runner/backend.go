package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/e2e/harness"
)

// Modes say how the applied objects reach wardend.
const (
	ModeDir  = "dir"  // files in wardend's --config-dir
	ModeKube = "kube" // objects in a real kube-apiserver that wardend watches (--kubeconfig)
)

// backend is how the world's objects reach wardend, and what differs with it: where
// Service IPs come from, how a sidecar proves its identity, where the mesh CA lives.
// The world's own bookkeeping (objects, pods, hosts, DNAT) is the same for every backend.
type backend interface {
	// preload hands wardend the documents of keys before it starts (the mesh
	// ConfigMap, so its first view, which fixes the trust domain of its certificates,
	// already has the scenario's MeshConfig).
	preload(ctx context.Context, w *world, keys []objKey) error
	// startWardend starts wardend on this backend's source of configuration.
	startWardend(ctx context.Context) error
	// preparePod runs before a pod's processes start, as a kubelet would see the pod
	// first; it may set how the pod's Envoy bootstraps (spec.opts).
	preparePod(ctx context.Context, p *harness.Pod, spec *podSpec) error
	// serviceIP returns the virtual IP of Service ns/name ("" when it has none yet).
	serviceIP(ns, name string) (string, error)
	// publish hands the world's objects, and what the cluster adds to them (pods, IPs,
	// endpoints), to wardend, and says what wardend's input must become. desired and
	// pods are keyed "namespace/name".
	publish(ctx context.Context, w *world, desired map[string]podSpec, pods map[string]*harness.Pod) (inputWait, error)
	// meshCA returns the CA that signs the workloads' certificates.
	meshCA(ctx context.Context, trustDomain string) (*certs.CA, error)
	// close releases what the backend started; wardend has stopped.
	close() error
}

// inputWait is what wardend's input must become once a backend published.
type inputWait struct {
	changed bool   // differ from the version served before the round began
	version string // when set: exactly this version
}

// newBackend returns the backend of mode for mesh m.
func newBackend(ctx context.Context, mode string, m *harness.Mesh, o Options) (backend, error) {
	switch mode {
	case "", ModeDir:
		return &dirBackend{mesh: m, vips: map[string]string{}, written: map[string][]byte{}}, nil
	case ModeKube:
		return startKubeBackend(ctx, m, o)
	}
	return nil, fmt.Errorf("unknown mode %q (want %s or %s)", mode, ModeDir, ModeKube)
}

// dirBackend writes the objects as files into wardend's --config-dir; the runner
// allocates Service IPs and adds a pod's IP as the annotation warden.io/pod-ip.
type dirBackend struct {
	mesh    *harness.Mesh
	vips    map[string]string // service "ns/name" -> virtual IP
	written map[string][]byte // file name -> content last written to wardend's folder
}

func (d *dirBackend) startWardend(ctx context.Context) error {
	return d.mesh.StartWardend(ctx)
}

func (d *dirBackend) preload(_ context.Context, w *world, keys []objKey) error {
	for _, k := range keys {
		doc := w.objects[k]
		if err := d.mesh.WriteConfig(k.fileName(), string(doc)); err != nil {
			return err
		}
		d.written[k.fileName()] = doc
	}
	return nil
}

func (d *dirBackend) preparePod(context.Context, *harness.Pod, *podSpec) error { return nil }

func (d *dirBackend) serviceIP(ns, name string) (string, error) {
	key := ns + "/" + name
	if ip, ok := d.vips[key]; ok {
		return ip, nil
	}
	ip, err := d.mesh.Cluster.AllocServiceIP()
	if err != nil {
		return "", err
	}
	d.vips[key] = ip
	return ip, nil
}

func (d *dirBackend) publish(ctx context.Context, w *world, _ map[string]podSpec, pods map[string]*harness.Pod) (inputWait, error) {
	docs, err := w.withStatus(pods)
	if err != nil {
		return inputWait{}, err
	}
	w.input = w.build(docs)
	if err := w.syncNetwork(ctx, w.input); err != nil {
		return inputWait{}, err
	}
	changed, err := writeConfig(d.mesh, d.written, docs)
	return inputWait{changed: changed}, err
}

func (d *dirBackend) meshCA(_ context.Context, trustDomain string) (*certs.CA, error) {
	return certs.LoadOrCreateCA(d.mesh.StateDir, trustDomain, time.Now)
}

func (d *dirBackend) close() error { return nil }
