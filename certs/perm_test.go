package certs

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// capture is a logger writing into a buffer.
func capture() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// ownedByOther makes path belong to another, non-root user: for real when the test
// runs as root, otherwise by having the check believe this process is someone else.
func ownedByOther(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() == 0 {
		if err := os.Lchown(path, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		return
	}
	me := os.Geteuid()
	currentUID = func() int { return me + 1 }
	t.Cleanup(func() { currentUID = os.Geteuid })
}

func wantLogged(t *testing.T, buf *bytes.Buffer, path, oldMode string) {
	t.Helper()
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.Contains(line, "path="+path+" ") && strings.Contains(line, "oldMode="+oldMode) {
			return
		}
	}
	t.Errorf("no log line naming %s and its old mode %s:\n%s", path, oldMode, buf.String())
}

func TestStateDirAndTokenKeyTightened(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	if _, err := LoadOrCreateTokenKey(state, WithStateLogger(slog.New(slog.DiscardHandler))); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(state, TokenKeyFile)
	chmod(t, state, 0o755)
	chmod(t, key, 0o644)

	log, buf := capture()
	if _, err := LoadOrCreateTokenKey(state, WithStateLogger(log)); err != nil {
		t.Fatal(err)
	}
	assertMode(t, state, 0o700|os.ModeDir)
	assertMode(t, key, 0o600)
	wantLogged(t, buf, state, "0755")
	wantLogged(t, buf, key, "0644")

	// Tight already: nothing to say.
	buf.Reset()
	if _, err := LoadOrCreateTokenKey(state, WithStateLogger(log)); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("a private state directory was reported:\n%s", buf.String())
	}
}

func TestFreshStateDirIsPrivateAndQuiet(t *testing.T) {
	state := filepath.Join(t.TempDir(), "a", "state")
	log, buf := capture()
	if _, err := LoadOrCreateCA(state, testTD, nil, WithStateLogger(log)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateTokenKey(state, WithStateLogger(log)); err != nil {
		t.Fatal(err)
	}
	assertMode(t, state, 0o700|os.ModeDir)
	assertMode(t, filepath.Join(state, TokenKeyFile), 0o600)
	if buf.Len() != 0 {
		t.Errorf("a state directory wardend created was reported:\n%s", buf.String())
	}
}

func TestSelfSignedCAFilesTightened(t *testing.T) {
	state := t.TempDir()
	if _, err := LoadOrCreateCA(state, testTD, nil); err != nil {
		t.Fatal(err)
	}
	caDir := filepath.Join(state, SelfCADir)
	key, cert := filepath.Join(caDir, RootKeyFile), filepath.Join(caDir, RootCertFile)
	chmod(t, state, 0o777)
	chmod(t, caDir, 0o750)
	chmod(t, key, 0o640)

	log, buf := capture()
	if _, err := LoadOrCreateCA(state, testTD, nil, WithStateLogger(log)); err != nil {
		t.Fatal(err)
	}
	assertMode(t, state, 0o700|os.ModeDir)
	assertMode(t, caDir, 0o700|os.ModeDir)
	assertMode(t, key, 0o600)
	assertMode(t, cert, 0o644) // a certificate is public
	wantLogged(t, buf, state, "0777")
	wantLogged(t, buf, caDir, "0750")
	wantLogged(t, buf, key, "0640")
}

func TestPluggedCAKeyTightened(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, PluggedCADir)
	f := newPluggedFixture(t, 1, t0.Add(365*24*time.Hour))
	f.write(t, dir)
	key := filepath.Join(dir, PluggedKeyFile)
	chmod(t, dir, 0o755)
	chmod(t, key, 0o644)

	log, buf := capture()
	if _, err := LoadOrCreateCA(state, testTD, newFakeClock(t0).Now, WithStateLogger(log)); err != nil {
		t.Fatal(err)
	}
	assertMode(t, dir, 0o700|os.ModeDir)
	assertMode(t, key, 0o600)
	wantLogged(t, buf, dir, "0755")
	wantLogged(t, buf, key, "0644")
}

// A Kubernetes Secret volume links each file into ..data/ in the same folder: that
// symlink is followed, and its target tightened.
func TestKeySymlinkWithinDirFollowed(t *testing.T) {
	state := t.TempDir()
	data := filepath.Join(state, "..2026_01_01")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	signer, err := LoadOrCreateTokenKey(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..2026_01_01", filepath.Join(state, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", TokenKeyFile), filepath.Join(state, TokenKeyFile)); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(data, TokenKeyFile)
	chmod(t, target, 0o644)
	log, buf := capture()
	got, err := LoadOrCreateTokenKey(state, WithStateLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyID() != signer.KeyID() {
		t.Fatal("the linked key was not the one loaded")
	}
	assertMode(t, target, 0o600)
	wantLogged(t, buf, filepath.Join(state, TokenKeyFile), "0644")
}

func TestStateDirRefusals(t *testing.T) {
	t.Run("state dir is a symlink", func(t *testing.T) {
		real := t.TempDir()
		link := filepath.Join(t.TempDir(), "state")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		for name, load := range map[string]func() error{
			"ca":        func() error { _, err := LoadOrCreateCA(link, testTD, nil); return err },
			"token key": func() error { _, err := LoadOrCreateTokenKey(link); return err },
		} {
			if err := load(); err == nil || !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "is a symlink to "+real) {
				t.Errorf("%s in a symlinked state dir: %v, want a refusal naming %s", name, err, link)
			}
		}
		if entries, _ := os.ReadDir(real); len(entries) != 0 {
			t.Errorf("files were written through the symlink: %v", entries)
		}
	})
	t.Run("key file links out of the dir", func(t *testing.T) {
		elsewhere := t.TempDir()
		if _, err := LoadOrCreateTokenKey(elsewhere); err != nil {
			t.Fatal(err)
		}
		state := t.TempDir()
		key := filepath.Join(state, TokenKeyFile)
		if err := os.Symlink(filepath.Join(elsewhere, TokenKeyFile), key); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateTokenKey(state); err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "outside") {
			t.Fatalf("token key linked out of the state dir: %v, want a refusal naming %s", err, key)
		}
	})
	t.Run("root key links out of ca/", func(t *testing.T) {
		state := t.TempDir()
		if _, err := LoadOrCreateCA(state, testTD, nil); err != nil {
			t.Fatal(err)
		}
		key := filepath.Join(state, SelfCADir, RootKeyFile)
		moved := filepath.Join(state, "moved-key.pem") // in the state dir, but not in ca/
		if err := os.Rename(key, moved); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(moved, key); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateCA(state, testTD, nil); err == nil || !strings.Contains(err.Error(), key) {
			t.Fatalf("root key linked out of ca/: %v, want a refusal naming %s", err, key)
		}
	})
	t.Run("state dir owned by another user", func(t *testing.T) {
		state := t.TempDir()
		ownedByOther(t, state)
		if _, err := LoadOrCreateTokenKey(state); err == nil || !strings.Contains(err.Error(), state) || !strings.Contains(err.Error(), "owned by uid") {
			t.Fatalf("state dir of another user: %v, want a refusal naming %s", err, state)
		}
	})
	t.Run("key file owned by another user", func(t *testing.T) {
		state := t.TempDir()
		if _, err := LoadOrCreateCA(state, testTD, nil); err != nil {
			t.Fatal(err)
		}
		key := filepath.Join(state, SelfCADir, RootKeyFile)
		if os.Geteuid() == 0 {
			ownedByOther(t, key) // the directories stay root's
		} else {
			// Without root only "this process is someone else" can be faked, and
			// then the directory is foreign too: check the key on its own.
			ownedByOther(t, key)
			if _, err := readKeyFile(key, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), key) {
				t.Fatalf("key of another user: %v, want a refusal naming %s", err, key)
			}
			return
		}
		if _, err := LoadOrCreateCA(state, testTD, nil); err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "owned by uid") {
			t.Fatalf("key of another user: %v, want a refusal naming %s", err, key)
		}
	})
	t.Run("state path is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "state")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateTokenKey(file); err == nil || !strings.Contains(err.Error(), file) {
			t.Fatalf("state dir that is a file: %v", err)
		}
	})
}
