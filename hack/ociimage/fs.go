package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// entryType is what one path of a layer is.
type entryType int

const (
	typeDir entryType = iota
	typeFile
	typeSymlink
)

// entry is one path of a layer. Paths are relative to the image root ("usr/sbin/x").
type entry struct {
	name string
	typ  entryType
	mode int64  // permission bits
	uid  int    // owner uid and gid
	src  string // typeFile: host file to copy, or "" when data is set
	data []byte // typeFile: contents written by this program
	link string // typeSymlink: target, exactly as on the host or as written here
}

// tree collects the paths of one layer. Adding the same path twice is fine when both
// agree; a conflict is an error, so no input is silently dropped.
type tree struct {
	hostRoot string // host files are read below this directory ("/" normally)
	entries  map[string]entry
}

func newTree(hostRoot string) *tree {
	return &tree{hostRoot: hostRoot, entries: map[string]entry{}}
}

func (t *tree) add(e entry) error {
	e.name = strings.TrimPrefix(path.Clean("/"+e.name), "/")
	if e.name == "" {
		return errors.New("an entry for / itself")
	}
	if old, ok := t.entries[e.name]; ok {
		if old.typ != e.typ || old.link != e.link || old.src != e.src || !bytes.Equal(old.data, e.data) || old.mode != e.mode || old.uid != e.uid {
			return fmt.Errorf("%s: added twice with different contents", e.name)
		}
		return nil
	}
	t.entries[e.name] = e
	return nil
}

func (t *tree) dir(name string, mode int64, uid int) error {
	return t.add(entry{name: name, typ: typeDir, mode: mode, uid: uid})
}

func (t *tree) file(name string, mode int64, data []byte) error {
	return t.add(entry{name: name, typ: typeFile, mode: mode, data: data})
}

func (t *tree) symlink(name, target string) error {
	return t.add(entry{name: name, typ: typeSymlink, link: target})
}

// hostFile copies the host file src to name in the image (no symlinks followed in name).
func (t *tree) hostFile(name, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	return t.add(entry{name: name, typ: typeFile, mode: normalMode(fi.Mode()), src: src})
}

// normalMode keeps only whether a file is executable: the host's umask and package
// quirks do not leak into the image.
func normalMode(m fs.FileMode) int64 {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// hostPath copies the host path p (absolute, as seen in the image) into the image the
// way the host lays it out: every symlink met on the way (/lib -> usr/lib on a merged-/usr
// Debian, libfoo.so.1 -> libfoo.so.1.2.3) is recorded as a symlink and followed, every
// directory on the way becomes a directory, and the final regular file is copied.
func (t *tree) hostPath(p string) error {
	start := p
	for hops := 0; hops < 40; hops++ {
		parts := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
		cur := ""
		next := ""
		for i, c := range parts {
			name := path.Join(cur, c)
			host := filepath.Join(t.hostRoot, filepath.FromSlash(name))
			fi, err := os.Lstat(host)
			if err != nil {
				return fmt.Errorf("copy %s from the host: %w", start, err)
			}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(host)
				if err != nil {
					return err
				}
				if err := t.symlink(name, target); err != nil {
					return err
				}
				base := target
				if !path.IsAbs(target) {
					base = path.Join("/", path.Dir(name), target)
				}
				next = path.Join(append([]string{base}, parts[i+1:]...)...)
			case fi.IsDir():
				if err := t.dir(name, 0o755, 0); err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				if i != len(parts)-1 {
					return fmt.Errorf("copy %s from the host: %s is a file", start, name)
				}
				if err := t.hostFile(name, host); err != nil {
					return err
				}
			default:
				return fmt.Errorf("copy %s from the host: %s is neither a file, a directory nor a symlink", start, name)
			}
			if next != "" {
				break
			}
			cur = name
		}
		if next == "" {
			return nil
		}
		p = next
	}
	return fmt.Errorf("copy %s from the host: too many symlinks", start)
}

// elfClosure copies the ELF files at paths (image paths of host files) and everything
// they load: the program interpreter and every DT_NEEDED library, recursively, found
// the way the dynamic loader finds them without an ld.so.cache (RUNPATH, then the
// multiarch and plain library directories).
func (t *tree) elfClosure(triplet string, paths ...string) error {
	libDirs := []string{"/lib/" + triplet, "/usr/lib/" + triplet, "/lib", "/usr/lib"}
	seen := map[string]bool{}
	queue := append([]string(nil), paths...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		if err := t.hostPath(p); err != nil {
			return err
		}
		f, err := elf.Open(filepath.Join(t.hostRoot, filepath.FromSlash(p)))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, prog := range f.Progs {
			if prog.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err != nil {
				f.Close()
				return fmt.Errorf("%s: read the program interpreter: %w", p, err)
			}
			queue = append(queue, strings.TrimRight(string(b), "\x00"))
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", p, err)
		}
		var runpath []string
		for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
			vals, _ := f.DynString(tag)
			for _, v := range vals {
				for _, d := range strings.Split(v, ":") {
					if strings.Contains(d, "$") {
						f.Close()
						return fmt.Errorf("%s: runpath %q: $ORIGIN and other tokens are not supported", p, v)
					}
					runpath = append(runpath, d)
				}
			}
		}
		f.Close()
		for _, lib := range needed {
			found := ""
			for _, d := range append(runpath, libDirs...) {
				cand := path.Join(d, lib)
				if fi, err := os.Stat(filepath.Join(t.hostRoot, filepath.FromSlash(cand))); err == nil && fi.Mode().IsRegular() {
					found = cand
					break
				}
			}
			if found == "" {
				return fmt.Errorf("%s needs %s: not found in %s on the host (run `make deps`)", p, lib, strings.Join(append(runpath, libDirs...), ", "))
			}
			queue = append(queue, found)
		}
	}
	return nil
}

// tarball writes the tree as a deterministic tar: entries sorted by name (so parents come
// first), missing parent directories added, every time set to mtime, owners numeric with
// no user or group names.
func (t *tree) tarball(mtime time.Time) ([]byte, error) {
	for name := range t.entries {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if e, ok := t.entries[d]; ok {
				if e.typ != typeDir {
					return nil, fmt.Errorf("%s: its parent %s is not a directory in this layer", name, d)
				}
				continue
			}
			t.entries[d] = entry{name: d, typ: typeDir, mode: 0o755}
		}
	}
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := t.entries[n]
		h := &tar.Header{Name: n, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime, Format: tar.FormatPAX}
		var data []byte
		switch e.typ {
		case typeDir:
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		case typeSymlink:
			h.Typeflag = tar.TypeSymlink
			h.Linkname = e.link
			h.Mode = 0o777
		case typeFile:
			h.Typeflag = tar.TypeReg
			data = e.data
			if e.src != "" {
				var err error
				if data, err = os.ReadFile(e.src); err != nil {
					return nil, err
				}
			}
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
