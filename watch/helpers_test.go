package watch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// decode decodes one file's content and fails the test on nothing; callers assert.
func decode(t *testing.T, yaml string) ([]Object, []Diagnostic) {
	t.Helper()
	return DecodeFile("test.yaml", []byte(strings.TrimLeft(yaml, "\n")))
}

// build decodes and builds, failing on any diagnostic.
func build(t *testing.T, yaml string) *Input {
	t.Helper()
	objs, diags := decode(t, yaml)
	for _, d := range diags {
		t.Errorf("unexpected diagnostic: %s", d)
	}
	return Build(objs, diags)
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// Write to a temporary file and rename, so a reader never sees a half-written file.
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(strings.TrimLeft(content, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func errorsOf(diags []Diagnostic) []Diagnostic {
	var out []Diagnostic
	for _, d := range diags {
		if d.IsError() {
			out = append(out, d)
		}
	}
	return out
}
