package watch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	security "istio.io/api/security/v1beta1"
)

const strictBlock = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: web
  namespace: demo
spec:
  mtls:
    mode: STRICT
`

// writeInPlace rewrites a file the way a non-atomic writer does (O_TRUNC, then write),
// so the watcher may see it empty or cut.
func writeInPlace(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func modes(in *Input) map[string]security.PeerAuthentication_MutualTLS_Mode {
	out := map[string]security.PeerAuthentication_MutualTLS_Mode{}
	for _, pa := range in.PeerAuthentications {
		out[pa.Key()] = pa.Spec.GetMtls().GetMode()
	}
	return out
}

// A file caught mid-write never drops an object it served: the whole file's last good
// objects keep serving until it parses again or is deleted (issue 12 item 2: cut to
// "kind: Peer…", the mesh went PERMISSIVE for a second). Istio has no such state (the
// API server accepts whole objects only); Warden's rule is that directory mode must not
// be weaker than `kubectl apply`, which never applies half a file.
func TestDirWatcherKeepsFileObjectsAtCutPoints(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pa.yaml")
	writeInPlace(t, path, strictBlock)
	h := startWatcher(t, dir, WithDebounce(20*time.Millisecond, time.Second))
	first := h.next()
	want := map[string]security.PeerAuthentication_MutualTLS_Mode{
		"istio-system/default": security.PeerAuthentication_MutualTLS_STRICT,
		"demo/web":             security.PeerAuthentication_MutualTLS_STRICT,
	}
	if got := modes(first); len(got) != 2 || len(first.Diagnostics) != 0 {
		t.Fatalf("first Input: %v %v", got, first.Diagnostics)
	}
	cuts := []string{
		"",                         // truncated, nothing written yet
		"apiVersion: security.ist", // kind missing: the document cannot be named
		"apiVersion: security.istio.io/v1\nkind: Peer",                     // a cut-off kind
		"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n",     // no name
		"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmeta", // not YAML
		strictBlock[:strings.Index(strictBlock, "STRICT")+4],               // a cut-off enum value: mode: STRI
		strictBlock[:strings.LastIndex(strictBlock, "kind:")+10],           // the second document cut to kind: Peer
	}
	for i, cut := range cuts {
		writeInPlace(t, path, cut)
		in := h.next()
		if cut != "" && len(in.Diagnostics) > 0 && in.Diagnostics[0].Message == emptyFileMessage {
			in = h.next() // the watcher saw the truncated file before the write: then the cut
		}
		if got := modes(in); got["istio-system/default"] != want["istio-system/default"] || got["demo/web"] != want["demo/web"] || in.Version != first.Version {
			t.Errorf("cut %d %q: modes %v version %s (want %s); diagnostics %v", i, cut, got, in.Version, first.Version, in.Diagnostics)
		}
		if len(in.Diagnostics) == 0 {
			t.Errorf("cut %d %q: no diagnostic", i, cut)
		}
		writeInPlace(t, path, strictBlock)
		for in = h.next(); len(in.Diagnostics) != 0; in = h.next() {
			if in.Version != first.Version {
				t.Fatalf("cut %d: while restoring, version %s, want %s", i, in.Version, first.Version)
			}
		}
	}

	// An atomic replace (editor or kubectl-style rename over the file) applies at once.
	writeFile(t, dir, "pa.yaml", strings.Replace(strictBlock, "STRICT", "PERMISSIVE", 1))
	in := h.next()
	if got := modes(in); got["istio-system/default"] != security.PeerAuthentication_MutualTLS_PERMISSIVE || got["demo/web"] != security.PeerAuthentication_MutualTLS_STRICT {
		t.Errorf("after rename over: %v %v", got, in.Diagnostics)
	}
	// A new file content without an object removes it (the file parses).
	writeFile(t, dir, "pa.yaml", strictBlock[:strings.Index(strictBlock, "---")])
	if got := modes(h.next()); len(got) != 1 {
		t.Errorf("after removing a document: %v", got)
	}
	// Deleting the file removes its objects.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := modes(h.next()); len(got) != 0 {
		t.Errorf("after delete: %v", got)
	}
}

// An established object keeps serving when a new file defines it again, whatever the
// file names' order; the newcomer is rejected naming both files (issue 12 item 3).
// Istio's API server refuses the second create of a name (AlreadyExists); the first
// object stays.
func TestDirWatcherEstablishedObjectWins(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "b.yaml", peerAuthn("STRICT"))
	h := startWatcher(t, dir, WithDebounce(20*time.Millisecond, time.Second))
	if modeOf(t, h.next()) != security.PeerAuthentication_MutualTLS_STRICT {
		t.Fatal("first Input not STRICT")
	}
	writeFile(t, dir, "a.yaml", peerAuthn("PERMISSIVE"))
	in := h.next()
	if modeOf(t, in) != security.PeerAuthentication_MutualTLS_STRICT {
		t.Errorf("newcomer a.yaml took over: %v", in.Diagnostics)
	}
	wantDiag := dir + "/a.yaml#0 PeerAuthentication istio-system/default: already defined at " + dir + "/b.yaml#0; this definition is ignored"
	if len(in.Diagnostics) != 1 || in.Diagnostics[0].String() != wantDiag || !in.Diagnostics[0].IsError() {
		t.Errorf("diagnostics = %v, want %s", in.Diagnostics, wantDiag)
	}
	// The established file breaks: its last good version still beats the newcomer.
	writeFile(t, dir, "b.yaml", peerAuthn("STRICTT"))
	in = h.next()
	if modeOf(t, in) != security.PeerAuthentication_MutualTLS_STRICT {
		t.Errorf("newcomer took over from a broken established file: %v", in.Diagnostics)
	}
	// Once the established file is gone, the other definition is taken.
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	in = h.next()
	if modeOf(t, in) != security.PeerAuthentication_MutualTLS_PERMISSIVE || len(in.Diagnostics) != 0 {
		t.Errorf("after deleting b.yaml: %v %v", modeOf(t, in), in.Diagnostics)
	}
}
