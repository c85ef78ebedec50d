package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerd is a private containerd daemon (Debian's containerd package, `make deps`)
// with its own root, state and socket, stopped when the test ends.
type containerd struct {
	sock string
}

func startContainerd(t *testing.T, dir string) *containerd {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.toml")
	// Only what importing and running needs: no CRI plugin (no kubelet here).
	if err := os.WriteFile(cfg, []byte("version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &containerd{sock: filepath.Join(dir, "containerd.sock")}
	logPath := filepath.Join(dir, "containerd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", cfg, "--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"), "--address", c.sock)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd (make deps installs it): %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.ctr(context.Background(), nil, "version")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("containerd did not answer in 30s: %v\n%s\n%s", err, out, log)
		}
		// Ask again in 50 ms, unless containerd exits first.
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("containerd exited: %v\n%s", err, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return c
}

// ctr runs ctr against this daemon in the k8s.io namespace (the kubelet's).
func (c *containerd) ctr(ctx context.Context, stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.sock, "--namespace", "k8s.io"}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("ctr %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), err
}

// imageConfig is the config digest (the image id) of the image containerd knows as ref.
func (c *containerd) imageConfig(ctx context.Context, ref string) (string, error) {
	out, err := c.ctr(ctx, nil, "images", "ls")
	if err != nil {
		return "", err
	}
	manifest := ""
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == ref {
			manifest = f[2]
		}
	}
	if manifest == "" {
		return "", fmt.Errorf("containerd has no image %s:\n%s", ref, out)
	}
	raw, err := c.ctr(ctx, nil, "content", "get", manifest)
	if err != nil {
		return "", fmt.Errorf("%w\n%s", err, raw)
	}
	var m struct {
		Config struct{ Digest string }
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return "", fmt.Errorf("manifest %s of %s: %w", manifest, ref, err)
	}
	return m.Config.Digest, nil
}
