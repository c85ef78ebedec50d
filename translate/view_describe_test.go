package translate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	x := NewIndex(buildInput(t, boutiqueManifests()))
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
