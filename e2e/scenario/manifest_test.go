package scenario

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	sigyaml "sigs.k8s.io/yaml"
)

// namespaces decodes every document of data and returns kind/name=namespace for each.
func namespaces(t *testing.T, data []byte) []string {
	t.Helper()
	docs, err := splitDocuments(data)
	if err != nil {
		t.Fatalf("split %q: %v", data, err)
	}
	var out []string
	for _, d := range docs {
		var obj struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
			Items    []struct {
				Kind     string
				Metadata struct{ Name, Namespace string }
			}
		}
		if err := sigyaml.Unmarshal(d.raw, &obj); err != nil {
			t.Fatal(err)
		}
		out = append(out, obj.Kind+"/"+obj.Metadata.Name+"="+obj.Metadata.Namespace)
		for _, it := range obj.Items {
			out = append(out, "  "+it.Kind+"/"+it.Metadata.Name+"="+it.Metadata.Namespace)
		}
	}
	return out
}

func TestFillNamespace(t *testing.T) {
	const keep = "# kept as written\napiVersion: v1\nkind: Service\nmetadata: {name: kept, namespace: other}\nspec: {ports: [{port: 80}]}\n"
	input := "---\n" + `apiVersion: v1
kind: ServiceAccount
metadata:
  name: sa
---
` + keep + `---
# only a comment
---
apiVersion: v1
kind: Namespace
metadata: {name: istioinaction}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: empty-ns, namespace: ""}
data: {big: 9007199254740993}
spec: {n: 9007199254740993}
---
kind: Pod
---
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Pod, metadata: {name: p1}}
  - {apiVersion: v1, kind: Pod, metadata: {name: p2, namespace: mine}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: n1}}
...
`
	out, err := FillNamespace([]byte(input), "default")
	if err != nil {
		t.Fatalf("FillNamespace: %v", err)
	}
	want := []string{
		"ServiceAccount/sa=default",
		"Service/kept=other",
		"Namespace/istioinaction=",
		"ConfigMap/empty-ns=default",
		"Pod/=default",
		"List/=",
		"  Pod/p1=default",
		"  Pod/p2=mine",
		"  Namespace/n1=",
	}
	if diff := cmp.Diff(want, namespaces(t, out)); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s\noutput:\n%s", diff, out)
	}
	if !strings.Contains(string(out), "---\n"+keep+"---\n") {
		t.Errorf("document with a namespace not kept byte for byte:\n%s", out)
	}
	if !strings.Contains(string(out), "big: 9007199254740993\n") {
		t.Errorf("re-marshalled document lost integer precision:\n%s", out)
	}
	if !strings.Contains(string(out), "apiVersion: v1\nkind: Namespace\nmetadata: {name: istioinaction}\n") {
		t.Errorf("Namespace document changed:\n%s", out)
	}
}

func TestFillNamespaceWithoutNamespace(t *testing.T) {
	in := "kind: Pod\nmetadata: {name: a}\n---\n---\nkind: Pod\nmetadata: {name: b}"
	out, err := FillNamespace([]byte(in), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := "kind: Pod\nmetadata: {name: a}\n---\nkind: Pod\nmetadata: {name: b}\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestFillNamespaceErrors(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"list document":   {"kind: Pod\n---\n- a\n", "document 2: want a mapping, got a list"},
		"scalar metadata": {"kind: Pod\nmetadata: x\n", "document 1: metadata: want a mapping"},
		"bad List item":   {"kind: List\nitems: [a]\n", "document 1: items[0]: want a mapping"},
		"invalid YAML":    {"kind: [Pod\n", "document 1:"},
		"duplicate keys":  {"kind: Pod\nkind: Service\n", "document 1:"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := FillNamespace([]byte(tt.in), "default")
			wantErr(t, err, tt.want)
		})
	}
}

func TestManifestRefRead(t *testing.T) {
	dir := writeFiles(t, map[string]string{"m/pod.yaml": "kind: Pod\nmetadata: {name: p}\n"})
	tests := []struct {
		name     string
		ref      ManifestRef
		wantName string
		wantNS   []string
		wantErr  string
	}{
		{"relative path", ManifestRef{Path: "m/pod.yaml", Namespace: "ns1"}, filepath.Join(dir, "m/pod.yaml"), []string{"Pod/p=ns1"}, ""},
		{"absolute path", ManifestRef{Path: filepath.Join(dir, "m/pod.yaml")}, filepath.Join(dir, "m/pod.yaml"), []string{"Pod/p="}, ""},
		{"inline", ManifestRef{Inline: "kind: Pod\nmetadata: {name: i}\n", Namespace: "ns2"}, InlineName, []string{"Pod/i=ns2"}, ""},
		{"both", ManifestRef{Path: "m/pod.yaml", Inline: "kind: Pod"}, "", nil, "both path and inline"},
		{"neither", ManifestRef{Namespace: "a"}, "", nil, "neither path nor inline"},
		{"missing file", ManifestRef{Path: "gone.yaml"}, filepath.Join(dir, "gone.yaml"), nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, data, err := tt.ref.Read(dir)
			if tt.wantErr != "" {
				wantErr(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if name != tt.wantName {
				t.Errorf("name = %q, want %q", name, tt.wantName)
			}
			if diff := cmp.Diff(tt.wantNS, namespaces(t, data)); diff != "" {
				t.Errorf("namespaces (-want +got):\n%s", diff)
			}
		})
	}
}
