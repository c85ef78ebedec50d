package translate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	"github.com/wardenmesh/warden/watch"
)

// benchMesh is 100 namespaces, each with 10 workloads behind 10 Services, one
// namespace PeerAuthentication (but ns000) and 9 workload PeerAuthentications (1,000 in all with
// the mesh policy), and a mesh-wide ISTIO_MUTUAL DestinationRule.
func benchMesh(b *testing.B) *watch.Input {
	b.Helper()
	var sb strings.Builder
	doc := func(format string, args ...any) {
		fmt.Fprintf(&sb, format, args...)
		sb.WriteString("\n---\n")
	}
	doc("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}")
	doc("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: mesh, namespace: istio-system}\nspec: {host: \"*.svc.cluster.local\", trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}")
	modes := []string{"STRICT", "PERMISSIVE", "DISABLE", "UNSET"}
	for n := range 100 {
		ns := fmt.Sprintf("ns%03d", n)
		doc("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {istio-injection: enabled}}", ns)
		if n > 0 { // ns000 inherits the mesh policy
			doc("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: %s}\nspec: {mtls: {mode: %s}}", ns, modes[n%3])
		}
		for w := range 10 {
			app := fmt.Sprintf("app%d", w)
			doc(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s, labels: {app: %s}}
spec:
  serviceAccountName: %s
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}, {name: tcp, containerPort: 9000}]}]
status: {podIP: 10.%d.%d.1}`, app, ns, app, app, n, w)
			doc("apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec: {clusterIP: 10.96.%d.%d, selector: {app: %s}, ports: [{name: http, port: 80, targetPort: 8080}, {name: tcp, port: 9000}]}",
				app, ns, n, w, app)
			if w > 0 {
				doc("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: %s, namespace: %s}\nspec: {selector: {matchLabels: {app: %s}}, mtls: {mode: %s}, portLevelMtls: {9000: {mode: %s}}}",
					app, ns, app, modes[w%4], modes[(w+1)%4])
			}
		}
	}
	objs, diags := watch.DecodeFile("bench.yaml", []byte(sb.String()))
	for _, d := range diags {
		if d.IsError() {
			b.Fatal(d)
		}
	}
	in := watch.Build(objs, diags)
	if got := len(in.PeerAuthentications); got != 1000 {
		b.Fatalf("bench mesh has %d PeerAuthentications, want 1000", got)
	}
	return in
}

func BenchmarkTranslateOneProxy1000PA(b *testing.B) {
	in := benchMesh(b)
	p := Proxy{ID: "app5.ns042", Namespace: "ns042", Pod: "app5"}
	b.ReportAllocs()
	for b.Loop() {
		if out := Translate(in, p); len(out.Listeners) == 0 {
			b.Fatal("no listeners")
		}
	}
}

func BenchmarkTranslate1000Proxies(b *testing.B) {
	in := benchMesh(b)
	proxies := make([]Proxy, 0, len(in.Workloads))
	for _, w := range in.Workloads {
		proxies = append(proxies, Proxy{ID: w.PodName + "." + w.Namespace, Namespace: w.Namespace, Pod: w.PodName})
	}
	if len(proxies) != 1000 {
		b.Fatalf("%d proxies, want 1000", len(proxies))
	}
	b.ReportAllocs()
	for b.Loop() {
		x := NewIndex(in)
		for _, p := range proxies {
			if out := x.Translate(p); len(out.Listeners) == 0 {
				b.Fatal("no listeners")
			}
		}
	}
}

// BenchmarkTranslatePolicyAtLimits translates one proxy selected by a policy at the
// decoder's limits (watch.MaxAuthorizationRules rules holding
// watch.MaxAuthorizationValues principals): the worst one object may cost a push.
func BenchmarkTranslatePolicyAtLimits(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(meshtest.Join(meshtest.RootNamespace, meshtest.Web) + "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: big, namespace: foo}\nspec:\n  rules:\n")
	per := watch.MaxAuthorizationValues/watch.MaxAuthorizationRules - 2 // a path and a method per rule
	for i := range watch.MaxAuthorizationRules {
		sb.WriteString("  - from: [{source: {principals: [")
		for j := range per {
			if j > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "\"cluster.local/ns/foo/sa/s%d-%d\"", i, j)
		}
		fmt.Fprintf(&sb, "]}}]\n    to: [{operation: {paths: [\"/p%d/*\"], methods: [GET]}}]\n", i)
	}
	objs, diags := watch.DecodeFile("big.yaml", []byte(sb.String()))
	in := watch.Build(objs, diags)
	if len(in.AuthorizationPolicies) != 1 {
		b.Fatalf("policy not accepted: %v", in.Diagnostics)
	}
	p := Proxy{ID: "web.foo", Namespace: "foo", Pod: "web"}
	b.ReportAllocs()
	for b.Loop() {
		if out := Translate(in, p); len(out.Listeners) == 0 {
			b.Fatal("no listeners")
		}
	}
}
