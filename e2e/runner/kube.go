package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/e2e/cluster"
	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/watch"
)

// wardendManifest in deploy/ runs wardend in a cluster (Deployment, Service,
// PodDisruptionBudget); here wardend runs on the host, so it is not applied.
const wardendManifest = "30-wardend.yaml"

// injectorManifest in deploy/ is the sidecar injector's MutatingWebhookConfiguration.
const injectorManifest = "40-injector.yaml"

// credentialTTL bounds the tokens of wardend and of the sidecars: longer than a scenario.
const credentialTTL = 2 * time.Hour

// kubeBackend serves the world from a real kube-apiserver: the manifests are applied
// with server-side apply, and the runner writes what a kubelet and the endpoint
// controller would (Pod objects with their IP, EndpointSlices). Sidecars prove their
// pod with a bound service-account token, as in a cluster.
type kubeBackend struct {
	mesh *harness.Mesh
	env  *kubeenv.Env
	root string // the mesh root's PEM file, once wardend created it

	applied map[objKey]appliedDoc  // documents in the API server, as last applied
	vips    map[string]string      // Service "ns/name" -> clusterIP the API server allocated
	pods    map[string]podObject   // "ns/name" -> the Pod object last written
	slices  map[string][]sliceSpec // Service "ns/name" -> its EndpointSlices as written
	// expected is the input wardend must serve after the last publish.
	expected *watch.Input
}

// appliedDoc is one applied manifest document.
type appliedDoc struct {
	doc   []byte
	group string // API group, to delete it unambiguously
}

// podObject is what the runner wrote for one pod.
type podObject struct {
	want kubeenv.Pod
	obj  *corev1.Pod
}

// startKubeBackend starts etcd and kube-apiserver with the cluster's Service range,
// applies what wardend needs from deploy/ and gives wardend its ServiceAccount's
// kubeconfig.
func startKubeBackend(ctx context.Context, m *harness.Mesh, o Options) (*kubeBackend, error) {
	env, err := kubeenv.Start(ctx, kubeenv.Options{ServiceCIDR: m.Cluster.ServiceCIDR(), Log: o.Log})
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	b := &kubeBackend{mesh: m, env: env, applied: map[objKey]appliedDoc{}, vips: map[string]string{},
		pods: map[string]podObject{}, slices: map[string][]sliceSpec{}}
	if err := b.setUp(ctx); err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	return b, nil
}

func (b *kubeBackend) setUp(ctx context.Context) error {
	root, err := cluster.RepoRoot()
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(root, "deploy", "*.yaml"))
	if err != nil {
		return err
	}
	// The injector's webhook (injectorManifest) routes through the Service wardend, which
	// the API server here cannot reach: with failurePolicy Fail it would refuse every pod
	// in the scenarios' istio-injection=enabled namespaces. e2e/kube tests it with a URL.
	files = slices.DeleteFunc(files, func(f string) bool {
		return filepath.Base(f) == wardendManifest || filepath.Base(f) == injectorManifest
	})
	if err := b.env.ApplyFiles(ctx, files...); err != nil {
		return fmt.Errorf("apply deploy/: %w", err)
	}
	kc, err := b.env.ServiceAccountKubeconfig(ctx, kubeenv.WardendNamespace, kubeenv.WardendServiceAccount, credentialTTL)
	if err != nil {
		return err
	}
	path := filepath.Join(b.mesh.Cluster.WorkDir(), "wardend.kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		return fmt.Errorf("write wardend kubeconfig: %w", err)
	}
	b.mesh.Kubeconfig = path
	return nil
}

func (b *kubeBackend) preload(ctx context.Context, w *world, keys []objKey) error {
	return b.applyDocs(ctx, w.objects, keys)
}

func (b *kubeBackend) startWardend(ctx context.Context) error {
	if err := b.mesh.StartWardend(ctx); err != nil {
		return err
	}
	// wardend creates the mesh CA Secret before it serves.
	pem, err := b.env.MeshRootPEM(ctx, kubeenv.WardendNamespace)
	if err != nil {
		return err
	}
	b.root = filepath.Join(b.mesh.Cluster.WorkDir(), "mesh-root.pem")
	if err := os.WriteFile(b.root, pem, 0o644); err != nil {
		return fmt.Errorf("write mesh root: %w", err)
	}
	return nil
}

// preparePod writes the Pod object, with its IP, before the containers start (its
// token is bound to it) and gives the sidecar a token for wardend's audience.
func (b *kubeBackend) preparePod(ctx context.Context, p *harness.Pod, spec *podSpec) error {
	pod, err := b.writePod(ctx, spec, p.IP())
	if err != nil {
		return err
	}
	if !spec.opts.Sidecar && !spec.opts.Gateway {
		return nil
	}
	if spec.opts.Injected != nil {
		// The kubelet runs the Pod as stored (its UID binds the projected token).
		spec.opts.Injected = pod
		return nil
	}
	tok, err := b.env.Token(ctx, pod.Namespace, pod.Spec.ServiceAccountName, []string{kubeenv.ProxyTokenAudience}, pod, credentialTTL)
	if err != nil {
		return err
	}
	path := filepath.Join(p.Dir(), "token")
	if err := os.WriteFile(path, []byte(tok), 0o600); err != nil {
		return fmt.Errorf("pod %s: write token: %w", p.ID(), err)
	}
	spec.opts.TokenFile, spec.opts.RootCertFile = path, b.root
	return nil
}

// writePod makes the Pod object of spec match (labels, annotations, service account,
// ports, IP), as a kubelet reports it; a pod whose service account or ports changed
// is recreated, as those are immutable.
func (b *kubeBackend) writePod(ctx context.Context, spec *podSpec, ip string) (*corev1.Pod, error) {
	o := spec.opts
	want := kubeenv.Pod{Namespace: o.Namespace, Name: o.Name, IP: ip, Labels: o.Labels, Annotations: spec.annotations,
		ServiceAccount: o.ServiceAccount, Ports: containerPorts(spec.ports)}
	if o.Injected != nil {
		// -inject: the Pod a cluster would hold, as the injector made it.
		want.Labels, want.Spec = o.Injected.Labels, &o.Injected.Spec
		// What the injector added, and the workload's annotations as they are now.
		want.Annotations = map[string]string{}
		maps.Copy(want.Annotations, o.Injected.Annotations)
		maps.Copy(want.Annotations, spec.annotations)
	}
	if want.ServiceAccount == "" {
		want.ServiceAccount = "default"
	}
	key := o.Namespace + "/" + o.Name
	cur, ok := b.pods[key]
	if ok && reflect.DeepEqual(cur.want, want) {
		return cur.obj, nil
	}
	if ok && (cur.want.ServiceAccount != want.ServiceAccount || !reflect.DeepEqual(cur.want.Ports, want.Ports)) {
		if err := b.deletePod(ctx, key); err != nil {
			return nil, err
		}
	}
	obj, err := b.env.WritePod(ctx, want)
	if err != nil {
		return nil, err
	}
	b.pods[key] = podObject{want: want, obj: obj}
	return obj, nil
}

func (b *kubeBackend) deletePod(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	pods := b.env.Client.CoreV1().Pods(ns)
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s: %w", key, err)
	}
	delete(b.pods, key)
	return nil
}

func containerPorts(ps []watch.Port) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, p := range ps {
		out = append(out, corev1.ContainerPort{Name: p.Name, ContainerPort: int32(p.Port), Protocol: corev1.Protocol(p.Protocol)})
	}
	return out
}

func (b *kubeBackend) serviceIP(ns, name string) (string, error) {
	return b.vips[ns+"/"+name], nil
}

// publish brings the API server to the world's state: namespaces and service accounts
// first, then the Pod objects and EndpointSlices (so a policy that needs an app, a
// JWKS server, finds its endpoints), then every other manifest; deleted manifests go
// last. The runner's own view, hosts files and DNAT then follow the Service IPs the
// API server allocated, and wardend must serve exactly what the API server holds.
func (b *kubeBackend) publish(ctx context.Context, w *world, desired map[string]podSpec, pods map[string]*harness.Pod) (inputWait, error) {
	first, rest := b.split(w.objects)
	if err := b.applyDocs(ctx, w.objects, first); err != nil {
		return inputWait{}, err
	}
	if err := b.syncPods(ctx, desired, pods); err != nil {
		return inputWait{}, err
	}
	docs, err := w.withStatus(pods)
	if err != nil {
		return inputWait{}, err
	}
	if err := b.syncSlices(ctx, endpointSlices(w.build(docs))); err != nil {
		return inputWait{}, err
	}
	if err := b.applyDocs(ctx, w.objects, rest); err != nil {
		return inputWait{}, err
	}
	if err := b.deleteGone(ctx, w.objects); err != nil {
		return inputWait{}, err
	}
	if docs, err = w.withStatus(pods); err != nil {
		return inputWait{}, err
	}
	w.input = w.build(docs)
	if err := w.syncNetwork(ctx, w.input); err != nil {
		return inputWait{}, err
	}
	want, err := clusterInput(ctx, b.env, b.expected)
	if err != nil {
		return inputWait{}, err
	}
	b.expected = want
	return inputWait{version: want.Version}, nil
}

// split orders the documents to apply: Namespaces and ServiceAccounts, then the rest.
// Pod manifests are not applied: the runner writes Pod objects as a kubelet would
// have them (from the same labels, annotations, service account and ports), since
// most of a Pod's spec is immutable and its status is the kubelet's.
func (b *kubeBackend) split(objects map[objKey][]byte) (first, rest []objKey) {
	for _, k := range sortedKeys(objects) {
		switch k.kind {
		case "Pod":
		case "Namespace", "ServiceAccount":
			first = append(first, k)
		default:
			rest = append(rest, k)
		}
	}
	return first, rest
}

// applyDocs server-side applies the documents of keys that changed since they were
// last applied (in an undeclared namespace, the namespace is created first), and
// reads back the clusterIP of Services.
func (b *kubeBackend) applyDocs(ctx context.Context, objects map[objKey][]byte, keys []objKey) error {
	for _, k := range keys {
		doc := objects[k]
		if prev, ok := b.applied[k]; ok && string(prev.doc) == string(doc) {
			continue
		}
		if k.namespace != "" && k.kind != "Namespace" {
			if err := b.env.EnsureNamespace(ctx, k.namespace); err != nil {
				return err
			}
		}
		res, err := b.env.ApplyAll(ctx, doc)
		if err != nil {
			return err
		}
		for _, obj := range res {
			gvk := obj.GroupVersionKind()
			b.applied[k] = appliedDoc{doc: doc, group: gvk.Group}
			if gvk.Kind == "Service" {
				ip, _, _ := unstructured.NestedString(obj.Object, "spec", "clusterIP")
				b.vips[k.namespace+"/"+k.name] = ip
			}
		}
	}
	return nil
}

// deleteGone deletes what was applied and is no longer in objects.
func (b *kubeBackend) deleteGone(ctx context.Context, objects map[objKey][]byte) error {
	for _, k := range sortedKeys(b.applied) {
		if _, ok := objects[k]; ok {
			continue
		}
		kind := k.kind
		if g := b.applied[k].group; g != "" {
			kind += "." + g
		}
		if err := b.env.Delete(ctx, kind, k.namespace, k.name); err != nil {
			return err
		}
		delete(b.applied, k)
		delete(b.vips, k.namespace+"/"+k.name)
	}
	return nil
}

// syncPods writes the Pod object of every desired pod, as its kubelet would report it,
// and deletes those of workloads that are gone.
func (b *kubeBackend) syncPods(ctx context.Context, desired map[string]podSpec, pods map[string]*harness.Pod) error {
	for _, key := range sortedMapKeys(desired) {
		spec := desired[key]
		if p := pods[key]; p.Opts.Injected != nil && spec.opts.Sidecar {
			spec.opts.Injected = p.Opts.Injected
		}
		if _, err := b.writePod(ctx, &spec, pods[key].IP()); err != nil {
			return err
		}
	}
	for _, key := range sortedMapKeys(b.pods) {
		if _, ok := desired[key]; ok {
			continue
		}
		if err := b.deletePod(ctx, key); err != nil {
			return err
		}
	}
	return nil
}

// syncSlices writes the EndpointSlices that differ from what was written, and deletes
// those no longer wanted.
func (b *kubeBackend) syncSlices(ctx context.Context, want map[string][]sliceSpec) error {
	const kind = "EndpointSlice.discovery.k8s.io"
	for _, svc := range sortedMapKeys(want) {
		ns, name, _ := strings.Cut(svc, "/")
		stale := map[string]bool{}
		have := map[string]sliceSpec{}
		for _, s := range b.slices[svc] {
			have[s.name], stale[s.name] = s, true
		}
		for _, s := range want[svc] {
			delete(stale, s.name)
			if h, ok := have[s.name]; ok && reflect.DeepEqual(h, s) {
				continue
			}
			if err := b.env.WriteNamedEndpointSlice(ctx, ns, name, s.name, s.ports, s.endpoints); err != nil {
				return err
			}
		}
		for _, n := range sortedMapKeys(stale) {
			if err := b.env.Delete(ctx, kind, ns, n); err != nil {
				return err
			}
		}
		b.slices[svc] = want[svc]
	}
	for _, svc := range sortedMapKeys(b.slices) {
		if _, ok := want[svc]; ok {
			continue
		}
		ns, _, _ := strings.Cut(svc, "/")
		for _, s := range b.slices[svc] {
			if err := b.env.Delete(ctx, kind, ns, s.name); err != nil {
				return err
			}
		}
		delete(b.slices, svc)
	}
	return nil
}

// meshCA reads the CA wardend keeps in its namespace: Istio's plug-in Secret cacerts
// when present, else the self-signed root in warden-ca.
func (b *kubeBackend) meshCA(ctx context.Context, trustDomain string) (*certs.CA, error) {
	secrets := b.env.Client.CoreV1().Secrets(kubeenv.WardendNamespace)
	s, err := secrets.Get(ctx, "cacerts", metav1.GetOptions{})
	switch {
	case err == nil:
		d := s.Data
		return certs.CAFromPEM(d["ca-cert.pem"], d["ca-key.pem"], d["root-cert.pem"], d["cert-chain.pem"], trustDomain, time.Now)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("read Secret cacerts: %w", err)
	}
	s, err = secrets.Get(ctx, "warden-ca", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read Secret warden-ca: %w", err)
	}
	d := s.Data
	return certs.CAFromPEM(d["root-cert.pem"], d["root-key.pem"], d["root-cert.pem"], nil, trustDomain, time.Now)
}

func (b *kubeBackend) close() error { return b.env.Stop() }

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
