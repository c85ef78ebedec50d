package translate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	"github.com/wardenmesh/warden/internal/golden"
	"github.com/wardenmesh/warden/watch"
)

func TestModeReason(t *testing.T) {
	cases := []struct {
		m    MTLS
		want string
	}{
		{MTLS{}, "no PeerAuthentication sets a mode: the mesh default is PERMISSIVE"},
		{MTLS{Mode: ModeStrict, Policy: "a/ns", NamespacePolicy: "a/ns", MeshPolicy: "istio-system/m", WorkloadPolicy: "a/w"},
			"namespace-wide policy a/ns; workload policy a/w leaves the mode UNSET; overrides mesh-wide policy istio-system/m"},
		{MTLS{MeshPolicy: "istio-system/m"},
			"no PeerAuthentication sets a mode: the mesh default is PERMISSIVE; mesh-wide policy istio-system/m leaves the mode UNSET"},
		{MTLS{Mode: ModeStrict, Policy: "a/w", WorkloadPolicy: "a/w"}, "workload policy a/w selects the pod's labels"},
	}
	for _, c := range cases {
		if got := modeReason(c.m); got != c.want {
			t.Errorf("modeReason(%+v):\n got %q\nwant %q", c.m, got, c.want)
		}
	}
}

// TestDescribeGolden describes the workload named on the first line of each
// testdata/view/*.in.yaml ("# describe: <pod>.<namespace>") and compares the JSON
// with the .golden.json next to it.
func TestDescribeGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "view", "*.in.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no describe inputs: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			target, ok := strings.CutPrefix(first, "# describe: ")
			pod, ns, ok2 := strings.Cut(target, ".")
			if !ok || !ok2 {
				t.Fatalf("first line must be \"# describe: <pod>.<namespace>\", got %q", first)
			}
			objs, diags := watch.DecodeFile(filepath.ToSlash(path), data)
			d, err := Describe(NewIndex(watch.Build(objs, diags)), ns, pod)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(d); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			golden.Check(t, strings.TrimSuffix(path, ".in.yaml")+".golden.json", got)
		})
	}
	golden.Prune(t, filepath.Join("testdata", "view", "*.golden.json"))
}

func TestDescribeUnknownWorkload(t *testing.T) {
	x := NewIndex(meshtest.Clean(t, boutiqueManifests()))
	if _, err := Describe(x, "frontend", "nope"); err == nil {
		t.Fatal("Describe of a missing pod: want an error")
	}
	d, err := Describe(x, "frontend", "frontend")
	if err != nil {
		t.Fatal(err)
	}
	if d.SPIFFEID != "spiffe://cluster.local/ns/frontend/sa/frontend" || len(d.Services) != 1 ||
		d.Services[0].Ports[0] != "80->8080/http" || d.MTLS.Mode != "PERMISSIVE" {
		t.Errorf("describe frontend: got %+v", d)
	}
}

// TestIstioClientDifference: Istio's clients choose auto mTLS from the mesh and
// namespace PeerAuthentication modes only (istio/istio pilot/pkg/model/
// push_context.go BestEffortInferServiceMTLSMode via GetNamespaceMutualTLSMode), so
// with DISABLE there and a workload that turns mTLS on they send plaintext
// (istio#56084). Warden's clients follow the workload's mode; describe notes the
// difference exactly when the two disagree.
func TestIstioClientDifference(t *testing.T) {
	pa := func(ns, name, spec string) string {
		return "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec: " + spec + "\n"
	}
	const pod = `apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: demo, labels: {app: web}, annotations: {warden.io/pod-ip: 10.0.0.5}}
spec: {serviceAccountName: web, containers: [{name: app, image: web, ports: [{containerPort: 8080}]}]}
`
	strictWL := pa("demo", "web", "{selector: {matchLabels: {app: web}}, mtls: {mode: STRICT}}")
	cases := []struct {
		name, manifests, want string
	}{
		{"mesh DISABLE, workload STRICT", pa("istio-system", "default", "{mtls: {mode: DISABLE}}") + strictWL, "would refuse them (503, istio#56084)"},
		{"namespace DISABLE, workload PERMISSIVE", pa("demo", "default", "{mtls: {mode: DISABLE}}") +
			pa("demo", "web", "{selector: {matchLabels: {app: web}}, mtls: {mode: PERMISSIVE}}"), "without a peer identity"},
		{"mesh DISABLE, namespace STRICT: Istio agrees", pa("istio-system", "default", "{mtls: {mode: DISABLE}}") + pa("demo", "default", "{mtls: {mode: STRICT}}"), ""},
		{"mesh DISABLE, workload DISABLE: Istio agrees", pa("istio-system", "default", "{mtls: {mode: DISABLE}}"), ""},
		{"mesh STRICT, workload STRICT", pa("istio-system", "default", "{mtls: {mode: STRICT}}") + strictWL, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs, diags := watch.DecodeFile("in.yaml", []byte(pod+c.manifests))
			d, err := Describe(NewIndex(watch.Build(objs, diags)), "demo", "web")
			if err != nil {
				t.Fatal(err)
			}
			got := d.MTLS.IstioDifference
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Errorf("istioDifference %q, want it to contain %q", got, c.want)
			}
		})
	}
}
