package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

const (
	dirPerm  = 0o700
	keyPerm  = 0o600
	certPerm = 0o644
)

// ensureDir creates dir (and parents) with owner-only permissions if missing. An
// existing dir is checked and tightened by secureDir.
func ensureDir(dir string, log *slog.Logger) error {
	if _, err := os.Lstat(dir); err == nil {
		return secureDir(dir, log)
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("create state directory %s: %w", dir, err)
	}
	return secureDir(dir, log) // MkdirAll accepts a symlink that appeared meanwhile
}

// writeFileSynced writes data to a new file at path with perm (not reduced by
// the umask) and flushes it to disk.
func writeFileSynced(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := writeAndClose(f, data, perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeAndClose(f *os.File, data []byte, perm fs.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// createFileOnce writes data to path atomically unless path already exists:
// the content goes to a temporary file in the same directory that is then
// hard-linked into place, so a concurrent creator (wardend and wardenctl on
// one state directory) never sees a partial file and never overwrites the
// winner's. It reports whether this call created the file.
func createFileOnce(path string, data []byte, perm fs.FileMode) (bool, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := writeAndClose(tmp, data, perm); err != nil {
		return false, fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("install %s: %w", path, err)
	}
	return true, syncDir(filepath.Dir(path))
}

// createDirOnce fills a temporary directory next to dir with files and renames
// it to dir, so the files appear together or not at all. If dir already
// exists and is not empty, nothing is changed and it reports false.
func createDirOnce(dir string, files []fileSpec) (bool, error) {
	parent := filepath.Dir(dir)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("create temporary directory for %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range files {
		if err := writeFileSynced(filepath.Join(tmp, f.name), f.data, f.perm); err != nil {
			return false, err
		}
	}
	if err := syncDir(tmp); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return false, nil
		}
		return false, fmt.Errorf("install %s: %w", dir, err)
	}
	return true, syncDir(parent)
}

// fileSpec is one file for createDirOnce.
type fileSpec struct {
	name string
	data []byte
	perm fs.FileMode
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// fileExists reports whether path exists; errors other than "not found" are
// returned.
func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
}
