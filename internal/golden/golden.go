// Package golden compares test output with golden files and rewrites them with one
// flag for every package: `go test ./... -update`. An -update run of a whole package
// also deletes the golden files no test case wrote (Prune), so a renamed or removed
// case leaves nothing stale behind. `make gen-check` runs the update and fails on any
// difference in testdata.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files of this package (and delete those no test case writes)")

var (
	mu      sync.Mutex
	written = map[string]bool{} // cleaned paths Check wrote in this run
)

// Updating reports whether this run rewrites golden files.
func Updating() bool { return *update }

// Check compares got with the golden file at path; with -update it writes got there
// instead (creating the directory) and remembers the file for Prune.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		written[filepath.Clean(path)] = true
		mu.Unlock()
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update in this package, then review the new file)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s is stale (-want +got); if the change is intended, run go test -update in this package:\n%s", path, diff)
	}
}

// Prune deletes, on an -update run, every file matching glob that no Check wrote
// during the run: the golden files of cases that no longer exist. Call it after all
// the cases that write into glob have run. It does nothing when -run or -skip narrow
// the run, because the cases that did not run wrote nothing.
func Prune(t testing.TB, glob string) {
	t.Helper()
	if !*update || narrowed() {
		return
	}
	pruneUnwritten(t, glob)
}

func pruneUnwritten(t testing.TB, glob string) {
	t.Helper()
	paths, err := filepath.Glob(glob)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range paths {
		if written[filepath.Clean(p)] {
			continue
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		t.Logf("deleted orphaned golden file %s", p)
	}
}

// narrowed reports whether -run or -skip select only some tests.
func narrowed() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return true
		}
	}
	return false
}
