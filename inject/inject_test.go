package inject

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/wardenmesh/warden/internal/golden"
)

var enabled = map[string]string{"istio-injection": "enabled"}

// appPod is a Deployment's pod (no name yet) with each kind of probe.
func appPod(mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: "shop", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			Containers: []corev1.Container{{
				Name:  "web",
				Image: "example/web:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "grpc", ContainerPort: 9090}},
				// Named port: resolved in the annotation (Istio DumpAppProbers updateNamedPort).
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/healthz", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTPS,
					HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "1"}}}}, PeriodSeconds: 10, TimeoutSeconds: 2},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}},
				StartupProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090, Service: ptr.To("web")}}},
			}, {
				Name:          "worker",
				Image:         "example/worker:1",
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
			}},
		},
	}
	if mut != nil {
		mut(p)
	}
	return p
}

func annotate(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			p.Annotations[kv[i]] = kv[i+1]
		}
	}
}

// TestInjectGolden: the JSON patch and the warnings of each case. The injected pod is
// checked against the patch applied to the original (what the API server does).
func TestInjectGolden(t *testing.T) {
	cases := map[string]*corev1.Pod{
		// Istio's injectRequired: namespace enabled, no pod opt-out -> injected; probes
		// rewritten as Istio's convertProbe (app_probe.go).
		"default": appPod(nil),
		// Istio's traffic.sidecar.istio.io annotations become capture flags (istio-iptables
		// flags of the same meaning); exclusions are added to the defaults.
		"traffic-annotations": appPod(annotate(
			"traffic.sidecar.istio.io/includeInboundPorts", "8080, 9090",
			"traffic.sidecar.istio.io/excludeInboundPorts", "9999",
			"traffic.sidecar.istio.io/excludeOutboundPorts", "5432,15012",
			"traffic.sidecar.istio.io/excludeOutboundIPRanges", "169.254.169.254/32,10.96.0.1/12",
			"traffic.sidecar.istio.io/includeOutboundIPRanges", "10.0.0.0/8",
			"proxy.istio.io/config", "terminationDrainDuration: 12s\nconcurrency: 2\n",
		)),
		// Malformed values: a warning naming each annotation and the default, and a
		// complete injection with the defaults (never a half-injected pod).
		"malformed-annotations": appPod(func(p *corev1.Pod) {
			annotate(
				"sidecar.istio.io/inject", "yes",
				"traffic.sidecar.istio.io/includeInboundPorts", "http",
				"traffic.sidecar.istio.io/excludeInboundPorts", "70000",
				"traffic.sidecar.istio.io/excludeOutboundPorts", "-1",
				"traffic.sidecar.istio.io/excludeOutboundIPRanges", "10.0.0.1",
				"traffic.sidecar.istio.io/includeOutboundIPRanges", "fd00::/8",
				"proxy.istio.io/config", "terminationDrainDuration: soon",
				"sidecar.istio.io/rewriteAppHTTPProbers", "maybe",
			)(p)
			p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](2)
		}),
		// Istio's ShouldRewriteAppHTTPProbers: "false" keeps the probes as they are.
		"no-probe-rewrite": appPod(annotate("sidecar.istio.io/rewriteAppHTTPProbers", "false",
			"proxy.istio.io/config", "terminationDrainDuration: 0s")),
		// A named port the container does not declare: probe kept, warning (Istio's
		// updateNamedPort drops it).
		"unknown-named-port": appPod(func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe.HTTPGet.Port = intstr.FromString("admin")
			p.Labels["sidecar.istio.io/inject"] = "true"
		}),
	}
	for name, pod := range cases {
		t.Run(name, func(t *testing.T) {
			orig := pod.DeepCopy()
			res, err := Pod(DefaultConfig(), "shop", enabled, pod)
			if err != nil {
				t.Fatal(err)
			}
			if !cmp.Equal(orig, pod) {
				t.Fatal("Pod modified its input")
			}
			if !res.Injected {
				t.Fatalf("not injected: %s", res.Reason)
			}
			patch, err := Patch(pod, res.Pod)
			if err != nil {
				t.Fatal(err)
			}
			checkPatchApplies(t, pod, res.Pod, patch)
			var ops any
			if err := json.Unmarshal(patch, &ops); err != nil {
				t.Fatal(err)
			}
			out, err := json.MarshalIndent(map[string]any{"warnings": res.Warnings, "patch": ops}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", name+".json"), append(out, '\n'))
		})
	}
	golden.Prune(t, filepath.Join("testdata", "*.json"))
}

func checkPatchApplies(t *testing.T, orig, want *corev1.Pod, patch []byte) {
	t.Helper()
	o, err := json.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := p.Apply(o)
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(applied, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, &got); diff != "" {
		t.Errorf("patched pod differs from the injected one (-want +got):\n%s", diff)
	}
}

// TestNotInjected: Istio's injectRequired says no (pkg/kube/inject/inject.go), or the
// pod is already injected (webhook.go: sidecar.istio.io/status present); the result is
// the pod unchanged and an empty patch.
func TestNotInjected(t *testing.T) {
	injected, err := Pod(DefaultConfig(), "shop", enabled, appPod(nil))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, ns string
		nsLabels map[string]string
		pod      *corev1.Pod
		reason   string
	}{
		{"namespace not enabled", "shop", map[string]string{"istio-injection": "disabled"}, appPod(nil), "not labelled"},
		{"label false", "shop", enabled, appPod(func(p *corev1.Pod) { p.Labels["sidecar.istio.io/inject"] = "false" }), `"false"`},
		{"annotation false", "shop", enabled, appPod(annotate("sidecar.istio.io/inject", "false")), `"false"`},
		// Istio lets the label win; Warden lets "false" win (documented in doc.go/README).
		{"label true annotation false", "shop", enabled, appPod(func(p *corev1.Pod) {
			p.Labels["sidecar.istio.io/inject"] = "true"
			annotate("sidecar.istio.io/inject", "false")(p)
		}), `"false"`},
		{"kube-system", "kube-system", enabled, appPod(nil), "never injected"},
		{"wardend namespace", "warden-system", enabled, appPod(nil), "never injected"},
		{"hostNetwork", "shop", enabled, appPod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }), "hostNetwork"},
		{"already injected", "shop", enabled, injected.Pod, "already injected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig := c.pod.DeepCopy()
			res, err := Pod(DefaultConfig(), c.ns, c.nsLabels, c.pod)
			if err != nil {
				t.Fatal(err)
			}
			if res.Injected || !strings.Contains(res.Reason, c.reason) {
				t.Fatalf("injected=%v reason=%q, want not injected because %q", res.Injected, res.Reason, c.reason)
			}
			patch, err := Patch(c.pod, res.Pod)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(patch, []byte("[]")) || !cmp.Equal(orig, res.Pod) {
				t.Errorf("pod changed: patch %s", patch)
			}
		})
	}
}

// TestRefused: a pod already using a name the injector adds cannot be injected whole,
// so it is refused rather than half-injected.
func TestRefused(t *testing.T) {
	for _, mut := range []func(*corev1.Pod){
		func(p *corev1.Pod) { p.Spec.Containers[1].Name = "envoy" },
		func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{{Name: "warden-init", Image: "x"}} },
		func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: "envoy-config"}} },
	} {
		if res, err := Pod(DefaultConfig(), "shop", enabled, appPod(mut)); err == nil {
			t.Errorf("want an error, got injected=%v", res.Injected)
		}
	}
}

// TestAppProbersRoundTrip: the annotation the injector writes is what ParseAppProbers
// (wardend's side) reads, with named ports resolved (Istio DumpAppProbers).
func TestAppProbersRoundTrip(t *testing.T) {
	res, err := Pod(DefaultConfig(), "shop", enabled, appPod(nil))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseAppProbers(res.Pod.Annotations[AnnotationAppProbers])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Prober{
		"/app-health/web/livez": {HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTPS,
			HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "1"}}}, TimeoutSeconds: 2},
		"/app-health/web/readyz":   {TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
		"/app-health/web/startupz": {GRPC: &corev1.GRPCAction{Port: 9090, Service: ptr.To("web")}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("app probers (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{"/a":{}}`, `{"/a":{"tcpSocket":{"port":0}}}`, `not json`} {
		if _, err := ParseAppProbers(bad); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

// TestProbeHostNotKept: a probe with httpGet.host is rewritten to the pod's own status
// port (no host), and the host stays in the annotation for the sidecar's Host header.
func TestProbeHostNotKept(t *testing.T) {
	res, err := Pod(DefaultConfig(), "shop", enabled, appPod(func(p *corev1.Pod) {
		p.Spec.Containers[0].LivenessProbe.HTTPGet.Host = "probe.example"
	}))
	if err != nil {
		t.Fatal(err)
	}
	if h := res.Pod.Spec.Containers[0].LivenessProbe.HTTPGet; h.Host != "" || h.Port.IntValue() != 15020 {
		t.Errorf("rewritten probe goes to %q:%s; want the pod's own 15020", h.Host, h.Port.String())
	}
	got, err := ParseAppProbers(res.Pod.Annotations[AnnotationAppProbers])
	if err != nil {
		t.Fatal(err)
	}
	if h := got["/app-health/web/livez"].HTTPGet; h == nil || h.Host != "probe.example" {
		t.Errorf("annotation lost httpGet.host: %+v", h)
	}
}
