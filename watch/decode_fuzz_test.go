package watch

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fuzzPath names the fuzzed file in Sources.
const fuzzPath = "mesh/fuzz.yaml"

// docLevel are the messages of diagnostics about a document that is not an object
// at all, so it has no kind or field to name.
var docLevel = []string{"read document: ", "invalid YAML: ", "document is not an object", "document is ", emptyFileMessage}

// FuzzDecodeFile feeds arbitrary files to the strict decoder every mode uses. Seeds
// are every golden input of translate/testdata (read when the test runs, so a new golden
// is a new seed) and, in testdata/fuzz/FuzzDecodeFile, the inline manifests of
// e2e/scenarios and the YAML of shared/fixtures. Properties: no
// panic; every diagnostic names the file, a document and a kind or field (unless the
// document is not an object); every object names its file, a known kind and a name,
// namespaced exactly when its kind is; decoding is deterministic; Build of the
// result is deterministic and does not depend on object order.
func FuzzDecodeFile(f *testing.F) {
	goldens, err := filepath.Glob(filepath.Join("..", "translate", "testdata", "*.in.yaml"))
	if err != nil || len(goldens) == 0 {
		f.Fatalf("no golden inputs in translate/testdata: %v", err)
	}
	for _, p := range goldens {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"---\n---\n",
		"# comments only\n",
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n- 5\n",
		"apiVersion: v1\nkind: List\nitems: {}\n",
		"kind: AuthorizationPolicy\nmetadata: {name: x}\n",
		"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, name: y}\n",
		"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\nspec: {action: DENYY}\n",
		"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x, namespace: y}\nspec: {mtls: {mode: STRICTT}}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, ports: [{containerPort: x}]}]}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata: {mesh: 'rootNamespace: [}\n",
		"{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"n\"}}",
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: yes}\n",
		"- a\n- b\n",
		"\t: x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, diags := DecodeFile(fuzzPath, data)
		objs2, diags2 := DecodeFile(fuzzPath, bytes.Clone(data))
		if !slices.Equal(diags, diags2) {
			t.Fatalf("diagnostics differ between two decodes:\n%v\n%v", diags, diags2)
		}
		if len(objs) != len(objs2) {
			t.Fatalf("%d objects, then %d", len(objs), len(objs2))
		}
		for i := range objs {
			a, b := objs[i], objs2[i]
			if !reflect.DeepEqual(a.Meta, b.Meta) || reflect.TypeOf(a.Spec) != reflect.TypeOf(b.Spec) ||
				!bytes.Equal(specBytes(a.Spec), specBytes(b.Spec)) || a.Retained || b.Retained {
				t.Fatalf("object %d differs between two decodes: %+v / %+v", i, a.Meta, b.Meta)
			}
			checkFuzzObject(t, &a)
		}
		for _, d := range diags {
			checkFuzzDiagnostic(t, d)
		}

		in := Build(objs, diags)
		again := Build(objs2, diags2)
		if in.Version != again.Version || !slices.Equal(in.Diagnostics, again.Diagnostics) {
			t.Fatalf("Build is not deterministic: %s %v / %s %v", in.Version, in.Diagnostics, again.Version, again.Diagnostics)
		}
		for _, d := range in.Diagnostics {
			checkFuzzDiagnostic(t, d)
		}
		seen := map[objectKey]bool{}
		dup := false
		for _, o := range objs {
			dup = dup || seen[keyOf(&o.Meta)]
			seen[keyOf(&o.Meta)] = true
		}
		if !dup { // without duplicates, order does not matter
			rev := slices.Clone(objs)
			slices.Reverse(rev)
			if r := Build(rev, diags); r.Version != in.Version || !slices.Equal(r.Diagnostics, in.Diagnostics) {
				t.Fatalf("Build depends on object order: %s / %s", in.Version, r.Version)
			}
		}
	})
}

func checkFuzzObject(t *testing.T, o *Object) {
	t.Helper()
	if o.Source.File != fuzzPath || o.Source.Doc < 0 {
		t.Fatalf("object %s has source %v", o.Ref(), o.Source)
	}
	info, ok := lookupKind(o.APIVersion, o.Kind)
	if !ok {
		t.Fatalf("object of unknown kind %s (%s) accepted", o.Kind, o.APIVersion)
	}
	if o.Name == "" || o.Spec == nil || reflect.ValueOf(o.Spec).IsNil() {
		t.Fatalf("object %s (%v) without name or spec", o.Ref(), o.Source)
	}
	if info.namespaced == (o.Namespace == "") {
		t.Fatalf("%s object %s: namespaced %v but namespace %q", o.Kind, o.Name, info.namespaced, o.Namespace)
	}
	if info.istio && reflect.TypeOf(o.Spec) != reflect.TypeOf(info.newSpec()) {
		t.Fatalf("%s object %s has spec %T", o.Kind, o.Name, o.Spec)
	}
}

func checkFuzzDiagnostic(t *testing.T, d Diagnostic) {
	t.Helper()
	if d.Source.File != fuzzPath || (d.Source.Doc < 0 && d.Message != emptyFileMessage) {
		t.Fatalf("diagnostic %q names source %v, want %s and a document", d, d.Source, fuzzPath)
	}
	if d.Severity != SeverityError && d.Severity != SeverityWarning {
		t.Fatalf("diagnostic %q has severity %q", d, d.Severity)
	}
	if d.Message == "" {
		t.Fatalf("diagnostic %+v has no message", d)
	}
	if d.Kind == "" && d.Field == "" && !slices.ContainsFunc(docLevel, func(p string) bool { return strings.HasPrefix(d.Message, p) }) {
		t.Fatalf("diagnostic %q names neither a kind nor a field", d)
	}
}
