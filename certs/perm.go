package certs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// LoadOption configures how a state directory is opened.
type LoadOption func(*loadConfig)

type loadConfig struct {
	log *slog.Logger
}

// WithStateLogger sets the logger that reports permissions tightened in the state
// directory (default slog.Default()).
func WithStateLogger(l *slog.Logger) LoadOption {
	return func(c *loadConfig) { c.log = l }
}

func newLoadConfig(opts []LoadOption) loadConfig {
	c := loadConfig{log: slog.Default()}
	for _, o := range opts {
		o(&c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// currentUID is the uid that may own the state directory and its keys (besides
// root); a variable so tests can be another user.
var currentUID = os.Geteuid

// checkOwner refuses a file that belongs to neither this process's user nor root:
// another user could replace what wardend trusts.
func checkOwner(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if me := currentUID(); st.Uid != 0 && int(st.Uid) != me {
		return fmt.Errorf("%s is owned by uid %d, neither this process's uid %d nor root: refusing to use it", path, st.Uid, me)
	}
	return nil
}

// secureDir checks an existing directory that holds keys: it must be a directory (not
// a symlink) owned by this user or root, and is made owner-only (0700) if group or
// others had any access, which is logged with the old mode. A missing dir is no error.
func secureDir(dir string, log *slog.Logger) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(dir)
		return fmt.Errorf("state directory %s is a symlink to %s: refusing it, pass the real directory", dir, target)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state directory %s is not a directory", dir)
	}
	if err := checkOwner(dir, fi); err != nil {
		return err
	}
	if old := fi.Mode().Perm(); old&0o077 != 0 {
		if err := os.Chmod(dir, dirPerm); err != nil {
			return fmt.Errorf("state directory %s is mode %#o, open to other users, and cannot be made %#o: %w", dir, old, dirPerm, err)
		}
		log.Warn("state directory was open to other users; made it owner-only", "path", dir,
			"oldMode", fmt.Sprintf("%#o", old), "mode", fmt.Sprintf("%#o", dirPerm))
	}
	return nil
}

// readKeyFile reads a file holding a private key. It must be a regular file owned by
// this user or root, and is made 0600 if group or others had any access (logged with
// the old mode). A symlink is followed only when it stays in the file's directory (the
// ..data/ layout of a Kubernetes Secret volume); one pointing anywhere else is refused.
// A missing file is reported as fs.ErrNotExist.
func readKeyFile(path string, log *slog.Logger) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	real := path
	if fi.Mode()&fs.ModeSymlink != 0 {
		if real, err = symlinkWithin(path); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if err := checkOwner(path, fi); err != nil {
		return nil, err
	}
	if old := fi.Mode().Perm(); old&0o077 != 0 {
		if err := f.Chmod(keyPerm); err != nil {
			return nil, fmt.Errorf("key file %s is mode %#o, readable by other users, and cannot be made %#o: %w", path, old, keyPerm, err)
		}
		args := []any{"path", path, "oldMode", fmt.Sprintf("%#o", old), "mode", fmt.Sprintf("%#o", keyPerm)}
		if real != path {
			args = append(args, "target", real)
		}
		log.Warn("key file was open to other users; made it owner-only", args...)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// symlinkWithin resolves the symlink path and returns its target if that lies in
// path's own directory.
func symlinkWithin(path string) (string, error) {
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", filepath.Dir(path), err)
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("key file %s is a dangling symlink: %v", path, err)
		}
		return "", fmt.Errorf("resolve %s: %w", path, err)
	}
	if !strings.HasPrefix(target, dir+string(filepath.Separator)) {
		return "", fmt.Errorf("key file %s is a symlink to %s, outside %s: refusing it", path, target, filepath.Dir(path))
	}
	return target, nil
}
