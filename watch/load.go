package watch

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadDir reads and builds every manifest under dir; see DecodeDir. The returned
// Diagnostics are the Input's.
func LoadDir(dir string) (*Input, []Diagnostic, error) {
	objs, diags, err := DecodeDir(dir)
	if err != nil {
		return nil, nil, err
	}
	in := Build(objs, diags)
	return in, in.Diagnostics, nil
}

// DecodeDir decodes every *.yaml, *.yml and *.json file under dir, recursively and in
// lexical order, skipping files and directories whose name starts with a dot (such as
// the ..data directories of a Kubernetes ConfigMap mount, whose files are reached
// through the symlinks beside them). Symlinks to files are followed; symlinks to
// directories are not. A file that cannot be read is a Diagnostic; only an unreadable
// dir is an error.
func DecodeDir(dir string) ([]Object, []Diagnostic, error) {
	return decodeDir(dir, nil)
}

// decodeCache keeps each file's decoded objects by content hash, so a reload decodes
// only the files that changed. Decoded objects are never modified, so sharing them
// between Inputs is safe.
type decodeCache struct {
	files map[string]decodedFile // by shown path
}

type decodedFile struct {
	sum   [32]byte
	objs  []Object
	diags []Diagnostic
}

func (c *decodeCache) decode(shown string, data []byte) ([]Object, []Diagnostic) {
	if c == nil {
		return DecodeFile(shown, data)
	}
	sum := sha256.Sum256(data)
	if f, ok := c.files[shown]; ok && f.sum == sum {
		return f.objs, f.diags
	}
	objs, diags := DecodeFile(shown, data)
	c.files[shown] = decodedFile{sum: sum, objs: objs, diags: diags}
	return objs, diags
}

// decodeDir is DecodeDir with an optional cache; files no longer present leave it.
func decodeDir(dir string, cache *decodeCache) ([]Object, []Diagnostic, error) {
	seen := map[string]bool{}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read manifests: %w", err)
	}
	var (
		objs  []Object
		diags []Diagnostic
	)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, walkErr error) error {
		shown := displayPath(dir, root, path)
		if walkErr != nil {
			if path == root {
				return walkErr
			}
			diags = append(diags, fileDiagnostic(shown, walkErr))
			return nil
		}
		if path != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isManifest(d.Name()) || !isFile(path, d) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			diags = append(diags, fileDiagnostic(shown, err))
			return nil
		}
		seen[shown] = true
		o, dg := cache.decode(shown, data)
		objs = append(objs, o...)
		diags = append(diags, dg...)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read manifests in %s: %w", dir, err)
	}
	if cache != nil {
		for f := range cache.files {
			if !seen[f] {
				delete(cache.files, f)
			}
		}
	}
	return objs, diags, nil
}

// manifestDirs lists dir (resolved when it is a symlink) and the subdirectories
// DecodeDir reads, for watching. The root comes first.
func manifestDirs(dir string) ([]string, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		out = append(out, path)
		return nil
	})
	return out, err
}

func isManifest(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// isFile reports whether d is a regular file or a symlink to one.
func isFile(path string, d fs.DirEntry) bool {
	if d.Type().IsRegular() {
		return true
	}
	if d.Type()&fs.ModeSymlink == 0 {
		return false
	}
	fi, err := os.Stat(path)
	return err != nil || fi.Mode().IsRegular() // a dangling link is reported when read
}

// displayPath names path the way the user named dir (not its resolved target).
func displayPath(dir, root, path string) string {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return filepath.Join(dir, rel)
}

func fileDiagnostic(path string, err error) Diagnostic {
	return LocationDiagnostic(Location{File: path, Doc: -1}, SeverityError, "read file: "+err.Error())
}
