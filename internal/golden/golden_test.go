package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// withUpdate runs f with -update set to on.
func withUpdate(t *testing.T, on bool, f func()) {
	t.Helper()
	old := *update
	*update = on
	defer func() { *update = old }()
	f()
}

func TestCheckMatchesAndWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "case.golden")
	withUpdate(t, true, func() { Check(t, path, []byte("v1\n")) })
	if b, err := os.ReadFile(path); err != nil || string(b) != "v1\n" {
		t.Fatalf("-update wrote %q, %v; want v1", b, err)
	}
	// Same content: no failure (checked on a fake TB so a failure does not fail this test).
	ok := &recorder{TB: t}
	withUpdate(t, false, func() { Check(ok, path, []byte("v1\n")) })
	if ok.failed {
		t.Errorf("Check failed on identical content: %v", ok.msgs)
	}
	stale := &recorder{TB: t}
	withUpdate(t, false, func() { Check(stale, path, []byte("v2\n")) })
	if !stale.failed {
		t.Error("Check passed on different content")
	}
}

func TestPruneDeletesOnlyUnwritten(t *testing.T) {
	dir := t.TempDir()
	kept, orphan, other := filepath.Join(dir, "a.golden"), filepath.Join(dir, "b.golden"), filepath.Join(dir, "c.in")
	for _, p := range []string{orphan, other} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	withUpdate(t, false, func() { Prune(t, filepath.Join(dir, "*.golden")) })
	if _, err := os.Stat(orphan); err != nil {
		t.Fatalf("Prune without -update deleted %s", orphan)
	}
	withUpdate(t, true, func() {
		Check(t, kept, []byte("k"))
		pruneUnwritten(t, filepath.Join(dir, "*.golden")) // Prune, minus the -run guard
	})
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("Prune deleted a file Check wrote: %v", err)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("Prune kept the orphan %s (%v)", orphan, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("Prune deleted a file outside its glob: %v", err)
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed bool
	msgs   []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msgs = append(r.msgs, format)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msgs = append(r.msgs, format)
}
