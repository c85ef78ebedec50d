package runner

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/scenario"
	"github.com/wardenmesh/warden/watch"
)

// objKey identifies one applied object, like the API server does (group-less).
type objKey struct{ kind, namespace, name string }

func (k objKey) String() string {
	if k.namespace == "" {
		return k.kind + " " + k.name
	}
	return k.kind + " " + k.namespace + "/" + k.name
}

// fileName is the object's file in wardend's configuration folder.
func (k objKey) fileName() string {
	clean := func(s string) string { return strings.NewReplacer("/", "_", " ", "_").Replace(s) }
	ns := k.namespace
	if ns == "" {
		ns = "_cluster"
	}
	return strings.ToLower(clean(k.kind)) + "." + clean(ns) + "." + clean(k.name) + ".yaml"
}

// world is the desired state of one scenario's cluster: the applied objects, as an API
// server would hold them, and what the runner derives from them as a kubelet, an IP
// allocator and an endpoint controller would.
type world struct {
	mesh    *harness.Mesh
	sc      *scenario.Scenario
	backend backend           // how the objects reach wardend
	objects map[objKey][]byte // applied manifests, one YAML document each
	vips    map[string]string // service "ns/name" -> virtual IP the cluster allocated
	input   *watch.Input      // the input built from objects (runner's own view)
	dnat    map[string]bool   // "vip:port" installed
	outside *harness.Pod
	// externals are the external hosts' pods, by host name (external.go).
	externals map[*harness.Pod]string
	// trustDomain is the one wardend issues certificates for (its first view's).
	trustDomain string
}

func newWorld(m *harness.Mesh, sc *scenario.Scenario, b backend) *world {
	return &world{mesh: m, sc: sc, backend: b, objects: map[objKey][]byte{}, vips: map[string]string{},
		dnat: map[string]bool{}}
}

// meshConfigKeys are the applied mesh ConfigMaps (ConfigMap istio in istio-system).
func (w *world) meshConfigKeys() []objKey {
	var out []objKey
	for _, k := range sortedKeys(w.objects) {
		if k.kind == "ConfigMap" && k.namespace == watch.MeshConfigNamespace && k.name == watch.MeshConfigName {
			out = append(out, k)
		}
	}
	return out
}

// splitDocs splits multi-document YAML into non-empty documents.
func splitDocs(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out [][]byte
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		out = append(out, doc)
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' || string(t) == "---" {
			continue
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// header is the part of a manifest that identifies it.
type header struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// apply stores manifests like `kubectl apply`: create or replace by kind/namespace/name.
func (w *world) apply(refs []scenario.ManifestRef) error {
	for _, ref := range refs {
		name, data, err := ref.Read(w.sc.Dir)
		if err != nil {
			return err
		}
		if ref.Namespace != "" {
			if data, err = scenario.FillNamespace(data, ref.Namespace); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		docs, err := splitDocs(data)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for i, doc := range docs {
			var h header
			if err := yaml.Unmarshal(doc, &h); err != nil {
				return fmt.Errorf("%s document %d: %w", name, i, err)
			}
			if h.Kind == "" || h.Metadata.Name == "" {
				return fmt.Errorf("%s document %d: kind and metadata.name are required", name, i)
			}
			ns := h.Metadata.Namespace
			if ns == "" && !scenario.ClusterScoped(h.Kind) {
				ns = "default"
			}
			w.objects[objKey{h.Kind, ns, h.Metadata.Name}] = doc
		}
	}
	return nil
}

// remove deletes objects like `kubectl delete`; deleting what is absent is an error.
func (w *world) remove(refs []scenario.ObjectRef) error {
	for _, r := range refs {
		k := objKey{r.Kind, r.Namespace, r.Name}
		if _, ok := w.objects[k]; !ok {
			return fmt.Errorf("delete %s: not found", k)
		}
		delete(w.objects, k)
	}
	return nil
}

// build decodes the stored objects exactly as wardend does.
func (w *world) build(extra map[objKey][]byte) *watch.Input {
	var objs []watch.Object
	var diags []watch.Diagnostic
	keys := sortedKeys(w.objects)
	for _, k := range keys {
		doc := w.objects[k]
		if e, ok := extra[k]; ok {
			doc = e
		}
		o, d := watch.DecodeFile(k.fileName(), doc)
		objs = append(objs, o...)
		diags = append(diags, d...)
	}
	return watch.Build(objs, diags)
}

func sortedKeys[V any](m map[objKey]V) []objKey {
	out := make([]objKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].fileName() < out[j].fileName() })
	return out
}

// podSpec is what the runner starts for one workload.
type podSpec struct {
	opts harness.PodOptions
	// What a Pod object of the workload carries besides opts (Kubernetes mode).
	annotations map[string]string
	ports       []watch.Port
}

func (a podSpec) equal(b podSpec) bool {
	x, y := a.opts, b.opts
	return x.Namespace == y.Namespace && x.Name == y.Name && x.ServiceAccount == y.ServiceAccount &&
		x.Sidecar == y.Sidecar && x.Gateway == y.Gateway && fmt.Sprint(x.HTTPPorts) == fmt.Sprint(y.HTTPPorts) &&
		fmt.Sprint(x.TCPPorts) == fmt.Sprint(y.TCPPorts) && labelsString(x.Labels) == labelsString(y.Labels)
}

func labelsString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k+"="+m[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// isTCPPort follows scenarios.md: a Service port named tcp* or with appProtocol tcp.
func isTCPPort(p watch.ServicePort) bool {
	return strings.HasPrefix(strings.ToLower(p.Name), "tcp") || strings.EqualFold(p.AppProtocol, "tcp")
}

// desiredPods derives one pod per workload, with the ports its app serves.
func (w *world) desiredPods(in *watch.Input) map[string]podSpec {
	out := map[string]podSpec{}
	for _, wl := range in.Workloads {
		o := harness.PodOptions{Namespace: wl.Namespace, Name: wl.PodName, ServiceAccount: wl.ServiceAccount,
			Labels: wl.PodLabels, Sidecar: wl.Sidecar && !wl.Gateway, Gateway: wl.Gateway}
		httpPorts, tcpPorts := map[uint32]bool{}, map[uint32]bool{}
		for _, p := range wl.Ports {
			if p.Protocol == "" || p.Protocol == "TCP" {
				httpPorts[p.Port] = true
			}
		}
		for _, svc := range in.ServicesSelecting(wl.Namespace, wl.PodLabels) {
			for _, sp := range svc.Ports {
				tp := sp.TargetPort
				if tp == 0 && sp.TargetPortName != "" {
					for _, cp := range wl.Ports {
						if cp.Name == sp.TargetPortName {
							tp = cp.Port
						}
					}
				}
				if tp == 0 {
					continue
				}
				if isTCPPort(sp) {
					tcpPorts[tp] = true
					delete(httpPorts, tp)
				} else if !tcpPorts[tp] {
					httpPorts[tp] = true
				}
			}
		}
		app, hasApp := w.sc.Apps[wl.Namespace+"/"+wl.PodName]
		for _, p := range append(app.TCPEcho, app.ServerFirst...) { // format 1.2: a line echo whatever the port's name
			tcpPorts[uint32(p)] = true
			delete(httpPorts, uint32(p))
		}
		o.HTTPPorts, o.TCPPorts = sortedPorts(httpPorts), sortedPorts(tcpPorts)
		if hasApp {
			o.AppConfig = app
		}
		out[o.Namespace+"/"+o.Name] = podSpec{opts: o, annotations: wl.PodAnnotations, ports: wl.Ports}
	}
	return out
}

func sortedPorts(m map[uint32]bool) []uint32 {
	out := make([]uint32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// withStatus returns the documents the runner writes for wardend: the applied ones,
// with what the cluster adds (a Service's allocated clusterIP, a pod's IP).
func (w *world) withStatus(pods map[string]*harness.Pod) (map[objKey][]byte, error) {
	out := map[objKey][]byte{}
	for k, doc := range w.objects {
		switch k.kind {
		case "Service":
			var obj map[string]any
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			spec, _ := obj["spec"].(map[string]any)
			if spec == nil {
				spec = map[string]any{}
				obj["spec"] = spec
			}
			if ip, _ := spec["clusterIP"].(string); ip == "" {
				vip, err := w.backend.serviceIP(k.namespace, k.name)
				if err != nil {
					return nil, err
				}
				if vip != "" {
					spec["clusterIP"] = vip
					w.vips[k.namespace+"/"+k.name] = vip
				}
			}
			b, err := yaml.Marshal(obj)
			if err != nil {
				return nil, err
			}
			out[k] = b
		case "Deployment", "Pod":
			p := pods[k.namespace+"/"+k.name]
			if p == nil {
				out[k] = doc
				continue
			}
			var obj map[string]any
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			meta := obj
			if k.kind == "Deployment" {
				spec, _ := obj["spec"].(map[string]any)
				tmpl, _ := spec["template"].(map[string]any)
				if tmpl == nil {
					out[k] = doc
					continue
				}
				meta = tmpl
			}
			md, _ := meta["metadata"].(map[string]any)
			if md == nil {
				md = map[string]any{}
				meta["metadata"] = md
			}
			ann, _ := md["annotations"].(map[string]any)
			if ann == nil {
				ann = map[string]any{}
				md["annotations"] = ann
			}
			ann[watch.AnnotationPodIP] = p.IP()
			b, err := yaml.Marshal(obj)
			if err != nil {
				return nil, err
			}
			out[k] = b
		default:
			out[k] = doc
		}
	}
	return out, nil
}

// writeConfig makes wardend's folder hold exactly docs; written is what it holds now
// (file name -> content) and is updated. It reports whether anything changed.
func writeConfig(m *harness.Mesh, written map[string][]byte, docs map[objKey][]byte) (bool, error) {
	want := map[string][]byte{}
	for k, d := range docs {
		want[k.fileName()] = d
	}
	changed := false
	for name := range written {
		if _, ok := want[name]; !ok {
			if err := m.RemoveConfig(name); err != nil && !os.IsNotExist(err) {
				return false, err
			}
			delete(written, name)
			changed = true
		}
	}
	for name, d := range want {
		if bytes.Equal(written[name], d) {
			continue
		}
		if err := m.WriteConfig(name, string(d)); err != nil {
			return false, err
		}
		written[name] = d
		changed = true
	}
	return changed, nil
}

// hostsFor lists the cluster-DNS names a pod in namespace ns resolves, as kube-dns would.
func (w *world) hostsFor(in *watch.Input, ns string) map[string]string {
	out := map[string]string{}
	for _, svc := range in.Services {
		vip := w.vips[svc.Namespace+"/"+svc.Name]
		if vip == "" {
			continue
		}
		for _, n := range []string{svc.Name + "." + svc.Namespace, svc.Name + "." + svc.Namespace + ".svc",
			svc.Name + "." + svc.Namespace + ".svc." + in.DomainSuffix} {
			out[n] = vip
		}
		if svc.Namespace == ns {
			out[svc.Name] = vip
		}
	}
	w.addExternalHosts(out)
	return out
}

// syncNetwork writes every pod's hosts file and the kube-proxy style DNAT rules.
func (w *world) syncNetwork(ctx context.Context, in *watch.Input) error {
	for _, p := range w.mesh.Pods() {
		if err := w.mesh.Cluster.SetHosts(p.Pod, w.hostsFor(in, p.Opts.Namespace)); err != nil {
			return err
		}
	}
	want := map[string]bool{}
	for _, svc := range in.Services {
		vip := w.vips[svc.Namespace+"/"+svc.Name]
		if vip == "" {
			continue
		}
		for _, sp := range svc.Ports {
			eps := in.Endpoints(svc, sp)
			if len(eps) == 0 {
				continue
			}
			key := vip + ":" + strconv.Itoa(int(sp.Port))
			want[key] = true
			if err := w.mesh.Cluster.SetServiceDNAT(vip, sp.Port, eps[0].IP, eps[0].Port); err != nil {
				return err
			}
			w.dnat[key] = true
		}
	}
	for key := range w.dnat {
		if want[key] {
			continue
		}
		host, port, _ := strings.Cut(key, ":")
		pn, _ := strconv.Atoi(port)
		if err := w.mesh.Cluster.RemoveServiceDNAT(host, uint32(pn)); err != nil {
			return err
		}
		delete(w.dnat, key)
	}
	return nil
}
