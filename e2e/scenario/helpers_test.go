package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles creates files (name -> content) under a new temporary directory and
// returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadText loads a scenario given as text, from s.yaml in a new temporary directory
// that also holds extra files.
func loadText(t *testing.T, text string, extra map[string]string) (*Scenario, error) {
	t.Helper()
	files := map[string]string{"s.yaml": text}
	for k, v := range extra {
		files[k] = v
	}
	dir := writeFiles(t, files)
	return Load(filepath.Join(dir, "s.yaml"))
}

// mustLoadText is loadText for scenarios that must be valid.
func mustLoadText(t *testing.T, text string, extra map[string]string) *Scenario {
	t.Helper()
	sc, err := loadText(t, text, extra)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return sc
}

// wantErr fails unless err's text contains every one of wants.
func wantErr(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}
