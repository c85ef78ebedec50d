package xds

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/watch"
)

// scaleMesh is the mesh of the issue at a given size: namespaces of 10 workloads, each
// behind a Service; 5 workload AuthorizationPolicies per namespace (each selecting one
// workload) and one namespace policy; a mesh-wide DENY and mesh-wide STRICT. It returns
// the decoded objects and the identities of every proxy.
func scaleMesh(b *testing.B, proxies int) ([]watch.Object, []Identity) {
	b.Helper()
	var sb strings.Builder
	doc := func(format string, args ...any) {
		fmt.Fprintf(&sb, format, args...)
		sb.WriteString("\n---\n")
	}
	doc("apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}")
	doc("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}")
	doc("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-admin, namespace: istio-system}\nspec: {action: DENY, rules: [{to: [{operation: {paths: [/admin]}}]}]}")
	var ids []Identity
	for n := range proxies / 10 {
		ns := fmt.Sprintf("ns%03d", n)
		doc("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {istio-injection: enabled}}", ns)
		doc("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ns-policy, namespace: %s}\nspec: {rules: [{from: [{source: {namespaces: [%s]}}]}]}", ns, ns)
		for w := range 10 {
			app := fmt.Sprintf("app%d", w)
			doc(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s, labels: {app: %s}}
spec:
  serviceAccountName: %s
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 10.%d.%d.%d}`, app, ns, app, app, n/250, n%250, w+1)
			doc("apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec: {clusterIP: 10.96.%d.%d, selector: {app: %s}, ports: [{name: http, port: 80, targetPort: 8080}]}",
				app, ns, n/25, (n%25)*10+w, app)
			if w < 5 {
				doc("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: %s, namespace: %s}\nspec: {selector: {matchLabels: {app: %s}}, rules: [{to: [{operation: {methods: [GET]}}]}]}", app, ns, app)
			}
			ids = append(ids, Identity{Namespace: ns, ServiceAccount: app, Pod: app, IPs: []string{fmt.Sprintf("10.%d.%d.%d", n/250, n%250, w+1)}})
		}
	}
	objs, diags := watch.DecodeFile("mesh.yaml", []byte(sb.String()))
	for _, d := range diags {
		if d.IsError() {
			b.Fatal(d)
		}
	}
	return objs, ids
}

// BenchmarkNamespacePolicyChange is "one namespace policy changed": the time from
// SetInput to the end of the push it causes (an upper bound of the time to the affected
// proxy's push), and how many proxies were re-translated, at 1,000 and 3,000 proxies.
// The change alternates the spec of one workload AuthorizationPolicy of ns007 (the
// watcher's Build of the new Input is not timed: it is the same in both designs).
func BenchmarkNamespacePolicyChange(b *testing.B) {
	for _, n := range []int{1000, 3000} {
		b.Run(fmt.Sprintf("proxies=%d", n), func(b *testing.B) {
			objs, ids := scaleMesh(b, n)
			target := -1
			for i, o := range objs {
				if o.Kind == "AuthorizationPolicy" && o.Namespace == "ns007" && o.Name == "app3" {
					target = i
				}
			}
			variants := make([][]watch.Object, 2)
			for v, method := range []string{"POST", "GET"} {
				alt, _ := watch.DecodeFile("mesh.yaml", []byte("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: app3, namespace: ns007}\nspec: {selector: {matchLabels: {app: app3}}, rules: [{to: [{operation: {methods: ["+method+"]}}]}]}"))
				alt[0].Source = objs[target].Source
				variants[v] = append(append(append([]watch.Object{}, objs[:target]...), alt[0]), objs[target+1:]...)
			}
			s := newScopeServer(b)
			addProxies(s, ids)
			s.SetInput(watch.Build(objs, nil))
			pushNow(s)
			inputs := []*watch.Input{watch.Build(variants[0], nil), watch.Build(variants[1], nil)}
			before := translatedCount(s)
			b.ResetTimer()
			var setDur, pushDur time.Duration
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				s.SetInput(inputs[i%2])
				t1 := time.Now()
				pushNow(s)
				setDur, pushDur = setDur+t1.Sub(t0), pushDur+time.Since(t1)
			}
			b.ReportMetric(float64(setDur.Microseconds())/float64(b.N)/1000, "setinput-ms/op")
			b.ReportMetric(float64(pushDur.Microseconds())/float64(b.N)/1000, "push-ms/op")
			b.ReportMetric(float64(translatedCount(s)-before)/float64(b.N), "translated/op")
		})
	}
}
