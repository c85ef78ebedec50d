package watch

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	security "istio.io/api/security/v1beta1"
)

// receiveTimeout bounds every wait for an Input; a test that waits longer has failed.
const receiveTimeout = 20 * time.Second

type watcherHarness struct {
	t   *testing.T
	w   *DirWatcher
	out chan *Input
	log *syncBuffer
}

func startWatcher(t *testing.T, dir string, opts ...DirOption) *watcherHarness {
	t.Helper()
	logs := &syncBuffer{}
	h := &watcherHarness{t: t, out: make(chan *Input), log: logs}
	h.w = NewDirWatcher(dir, slog.New(slog.NewTextHandler(logs, nil)), opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.w.Run(ctx, h.out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

func (h *watcherHarness) next() *Input {
	h.t.Helper()
	select {
	case in := <-h.out:
		return in
	case <-time.After(receiveTimeout):
		h.t.Fatalf("no Input within %v; logs:\n%s", receiveTimeout, h.log)
		return nil
	}
}

func peerAuthn(mode string) string {
	return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: " + mode + "}}\n"
}

func modeOf(t *testing.T, in *Input) security.PeerAuthentication_MutualTLS_Mode {
	t.Helper()
	if len(in.PeerAuthentications) != 1 {
		t.Fatalf("peer authentications = %v, want 1", in.PeerAuthentications)
	}
	return in.PeerAuthentications[0].Spec.GetMtls().GetMode()
}

func TestDirWatcherReloadsAndKeepsLastGoodOnError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pa.yaml", peerAuthn("STRICT"))
	h := startWatcher(t, dir, WithDebounce(20*time.Millisecond, time.Second))

	first := h.next()
	if modeOf(t, first) != security.PeerAuthentication_MutualTLS_STRICT || len(first.Diagnostics) != 0 {
		t.Fatalf("first Input: mode %v, diagnostics %v", modeOf(t, first), first.Diagnostics)
	}

	writeFile(t, dir, "pa.yaml", peerAuthn("PERMISSIVE"))
	second := h.next()
	if modeOf(t, second) != security.PeerAuthentication_MutualTLS_PERMISSIVE || second.Version == first.Version {
		t.Fatalf("after edit: mode %v, version %s", modeOf(t, second), second.Version)
	}

	// A typo must not drop the policy: the last good PERMISSIVE version keeps serving.
	writeFile(t, dir, "pa.yaml", peerAuthn("STRICTT"))
	third := h.next()
	if modeOf(t, third) != security.PeerAuthentication_MutualTLS_PERMISSIVE || third.Version != second.Version {
		t.Errorf("after typo: mode %v, version %s (was %s)", modeOf(t, third), third.Version, second.Version)
	}
	errs := errorsOf(third.Diagnostics)
	if len(errs) != 1 || errs[0].Field != "spec.mtls.mode" || errs[0].Source.File != filepath.Join(dir, "pa.yaml") {
		t.Fatalf("diagnostics = %v", third.Diagnostics)
	}
	if len(third.Stale) != 1 || len(third.Rejected) != 0 {
		t.Errorf("stale %v rejected %v", third.Stale, third.Rejected)
	}
	if got := h.w.Diagnostics(); len(errorsOf(got)) != 1 {
		t.Errorf("watcher diagnostics = %v", got)
	}
	if logs := h.log.String(); strings.Contains(logs, "STRICTT") {
		t.Errorf("the watcher logged a diagnostic; wardend's server logs each once:\n%s", logs)
	}

	// A new directory is watched, and the fix clears the error.
	writeFile(t, dir, "more/sa.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: added, namespace: ns}\n")
	writeFile(t, dir, "pa.yaml", peerAuthn("STRICT"))
	var fixed *Input
	for fixed == nil || !fixed.ServiceAccounts["ns/added"] || len(fixed.Diagnostics) != 0 {
		fixed = h.next() // the two writes may land in one reload or two
	}
	if modeOf(t, fixed) != security.PeerAuthentication_MutualTLS_STRICT || len(fixed.Stale) != 0 {
		t.Errorf("after fix: mode %v stale %v", modeOf(t, fixed), fixed.Stale)
	}
}

func TestDirWatcherCoalescesBurst(t *testing.T) {
	dir := t.TempDir()
	// A generous hold-off: the burst below takes microseconds, far less than this.
	h := startWatcher(t, dir, WithDebounce(time.Second, 10*time.Second))
	if first := h.next(); len(first.objects) != 0 {
		t.Fatalf("first Input of an empty folder has objects: %v", first.objects)
	}
	names := []string{"a", "b", "c", "d", "e"}
	for _, n := range names {
		writeFile(t, dir, n+".yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: "+n+", namespace: ns}\n")
	}
	burst := h.next()
	for _, n := range names {
		if !burst.ServiceAccounts["ns/"+n] {
			t.Errorf("the first Input after the burst lacks %s: the burst was split", n)
		}
	}
	// The next Input must be the one for this sentinel change, not a leftover of the burst.
	writeFile(t, dir, "sentinel.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sentinel, namespace: ns}\n")
	if next := h.next(); !next.ServiceAccounts["ns/sentinel"] {
		t.Errorf("a second Input was emitted for the burst (version %s)", next.Version)
	}
}

func TestDirWatcherFollowsConfigMapSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "..v1/pa.yaml", peerAuthn("STRICT"))
	mustSymlink(t, "..v1", filepath.Join(dir, "..data"))
	mustSymlink(t, "..data/pa.yaml", filepath.Join(dir, "pa.yaml"))
	h := startWatcher(t, dir, WithDebounce(20*time.Millisecond, time.Second))
	if modeOf(t, h.next()) != security.PeerAuthentication_MutualTLS_STRICT {
		t.Fatal("first Input does not read through the symlinks")
	}

	// What the kubelet does on a ConfigMap update: new timestamped dir, atomic swap of ..data.
	writeFile(t, dir, "..v2/pa.yaml", peerAuthn("DISABLE"))
	mustSymlink(t, "..v2", filepath.Join(dir, "..data_tmp"))
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if got := modeOf(t, h.next()); got != security.PeerAuthentication_MutualTLS_DISABLE {
		t.Errorf("after the swap mode = %v", got)
	}
}

func TestDirWatcherFailsOnMissingDirectory(t *testing.T) {
	w := NewDirWatcher(filepath.Join(t.TempDir(), "missing"), nil)
	if err := w.Run(context.Background(), make(chan *Input, 1)); err == nil {
		t.Error("Run on a missing directory returned nil")
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe for the watcher goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
