package translate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	"github.com/google/go-cmp/cmp"
)

// boutiqueNamespaces are the 11 Online Boutique namespaces, one workload each.
var boutiqueNamespaces = []string{"ad", "cart", "checkout", "currency", "email", "frontend",
	"loadgenerator", "payment", "product-catalog", "recommendation", "shipping"}

// boutiqueManifests is the Online Boutique mesh of the e2e scenario: a Deployment,
// ServiceAccount and Service per namespace, and the ingress gateway.
func boutiqueManifests() string {
	var b strings.Builder
	for _, ns := range boutiqueNamespaces {
		fmt.Fprintf(&b, `apiVersion: v1
kind: Namespace
metadata: {name: %[1]s, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      serviceAccountName: %[1]s
      containers: [{name: server, image: boutique/%[1]s, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[1]s}
spec:
  selector: {app: %[1]s}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
`, ns)
	}
	b.WriteString(`apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  template:
    metadata: {labels: {istio: ingressgateway}}
    spec:
      serviceAccountName: istio-ingressgateway
      containers: [{name: istio-proxy, image: envoy, ports: [{containerPort: 80}]}]
`)
	return b.String()
}

func namespaceStrict(ns string) string {
	return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: " + ns +
		"}\nspec: {mtls: {mode: STRICT}}\n"
}

const (
	frontendStrict = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: frontend, namespace: frontend}
spec:
  selector: {matchLabels: {app: frontend}}
  mtls: {mode: STRICT}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: frontend, namespace: frontend}
spec:
  host: frontend.frontend.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
`
	meshStrict = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: mesh-wide, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`
)

// viewTable renders MTLSView as "pod.ns proxy mode policy port:mode:policy..." lines.
func viewTable(rows []WorkloadMTLS) []string {
	var out []string
	for _, r := range rows {
		line := fmt.Sprintf("%s.%s %s %s %s", r.Name, r.Namespace, r.Proxy, dashIfEmpty(r.Mode), dashIfEmpty(r.Policy))
		for _, p := range r.Ports {
			line += fmt.Sprintf(" %d:%s:%s", p.Port, p.Mode, p.Policy)
		}
		out = append(out, line)
	}
	return out
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// boutiqueTable is the expected table: every workload PERMISSIVE by the mesh
// default except those in override ("ns" -> "MODE policy").
func boutiqueTable(override map[string]string, all string) []string {
	out := []string{"istio-ingressgateway.istio-system gateway - -"}
	for _, ns := range boutiqueNamespaces {
		d := all
		if o, ok := override[ns]; ok {
			d = o
		}
		if d == "" {
			d = "PERMISSIVE " + MeshDefault
		}
		mode, policy, _ := strings.Cut(d, " ")
		out = append(out, fmt.Sprintf("%s.%s sidecar %s %s 8080:%s:%s", ns, ns, mode, policy, mode, policy))
	}
	// Rows sort by namespace: istio-system sits between frontend and loadgenerator.
	sorted := append([]string{}, out[1:7]...)
	sorted = append(sorted, out[0])
	return append(sorted, out[7:]...)
}

// TestMTLSViewOnlineBoutique walks the Cloud Service Mesh walkthrough: namespace
// STRICT in all 11 namespaces, deletion, workload STRICT on frontend, deletion,
// mesh-wide STRICT, deletion.
func TestMTLSViewOnlineBoutique(t *testing.T) {
	base := boutiqueManifests()
	var nsStrict []string
	for _, ns := range boutiqueNamespaces {
		nsStrict = append(nsStrict, namespaceStrict(ns))
	}
	allNS := map[string]string{}
	for _, ns := range boutiqueNamespaces {
		allNS[ns] = "STRICT " + ns + "/default"
	}
	steps := []struct {
		name string
		docs []string
		want []string
	}{
		{"no policy", nil, boutiqueTable(nil, "")},
		{"namespace STRICT in 11 namespaces", nsStrict, boutiqueTable(allNS, "")},
		{"namespace policies deleted", nil, boutiqueTable(nil, "")},
		{"workload STRICT on frontend", []string{frontendStrict},
			boutiqueTable(map[string]string{"frontend": "STRICT frontend/frontend"}, "")},
		{"workload policy deleted", nil, boutiqueTable(nil, "")},
		{"mesh-wide STRICT", []string{meshStrict}, boutiqueTable(nil, "STRICT istio-system/mesh-wide")},
		{"mesh-wide deleted", nil, boutiqueTable(nil, "")},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			x := NewIndex(meshtest.Clean(t, append([]string{base}, st.docs...)...))
			if diff := cmp.Diff(st.want, viewTable(MTLSView(x))); diff != "" {
				t.Errorf("mtls view (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMTLSViewAgreesWithResolve checks that every row's modes come from the same
// resolution translation uses, for port-level overrides and UNSET inheritance.
func TestMTLSViewAgreesWithResolve(t *testing.T) {
	in := meshtest.Clean(t, `apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: demo, labels: {app: web}}
spec:
  containers: [{name: app, image: web, ports: [{containerPort: 8080}, {containerPort: 9090}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: legacy, namespace: demo, labels: {app: legacy, sidecar.istio.io/inject: "false"}}
spec:
  containers: [{name: app, image: legacy, ports: [{containerPort: 8080}]}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ns, namespace: demo}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: web, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  mtls: {mode: UNSET}
  portLevelMtls:
    9090: {mode: DISABLE}
    7070: {mode: PERMISSIVE}
`)
	x := NewIndex(in)
	want := []string{
		"legacy.demo none STRICT demo/ns 8080:STRICT:demo/ns",
		"web.demo sidecar STRICT demo/ns 7070:PERMISSIVE:demo/web 8080:STRICT:demo/ns 9090:DISABLE:demo/web",
	}
	rows := MTLSView(x)
	if diff := cmp.Diff(want, viewTable(rows)); diff != "" {
		t.Errorf("mtls view (-want +got):\n%s", diff)
	}
	if rows[0].Note == "" {
		t.Errorf("a workload without sidecar must say that nothing enforces its mode")
	}
	for _, r := range rows {
		m := ResolveMTLS(in, r.Namespace, in.WorkloadByPod(r.Namespace, r.Name).PodLabels)
		for _, p := range r.Ports {
			if got := m.PortMode(p.Port).String(); got != p.Mode {
				t.Errorf("%s.%s port %d: view says %s, ResolveMTLS says %s", r.Name, r.Namespace, p.Port, p.Mode, got)
			}
		}
	}
	// The Pod object's labels decide, whatever labels the proxy's credential carries
	// (a proxy never chooses its own policy inputs), as in Translate.
	row := ProxyMTLS(x, Proxy{Namespace: "demo", Pod: "web", Labels: map[string]string{"app": "other"}})
	if row.Mode != "STRICT" || row.Policy != "demo/ns" || len(row.Ports) != 3 || row.Ports[0].Policy != "demo/web" {
		t.Errorf("proxy with other labels: got %+v, want the Pod object's view (demo/web decides 7070 and 9090)", row)
	}
	// A pod the input has no object for is judged by the labels its credential vouches for.
	row = ProxyMTLS(x, Proxy{Namespace: "demo", Pod: "unlisted", Labels: map[string]string{"app": "web"}})
	if len(row.Ports) == 0 || row.Ports[0].Policy != "demo/web" {
		t.Errorf("pod without object: got %+v, want its credential's labels to select demo/web", row)
	}
}
