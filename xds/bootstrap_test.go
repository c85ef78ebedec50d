package xds

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardenmesh/warden/certs"
)

// envoyBinary finds stock Envoy like the e2e tests do; a missing Envoy fails the test.
func envoyBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WARDEN_ENVOY"); p != "" {
		return p
	}
	p, err := filepath.Abs("../.venv/bin/envoy")
	if err == nil {
		if _, err = os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("stock Envoy 1.40 not found (%v): run `make deps`", err)
	return ""
}

// TestBootstrapAcceptedByEnvoy checks wardenctl's bootstrap with Envoy's own validator.
func TestBootstrapAcceptedByEnvoy(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.LoadOrCreateCA(dir, "cluster.local", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, delta := range []bool{false, true} {
		b, err := Bootstrap(BootstrapOptions{
			Identity: Identity{Namespace: "shop", ServiceAccount: "web", Pod: "web-0"},
			Labels:   map[string]string{"app": "web"}, IPs: []string{"10.0.0.2"},
			Server: "10.0.0.1:15012", ServerName: ServerName("warden-system"),
			RootPEM: ca.RootPEM(), TokenFile: "/var/run/secrets/tokens/warden-token", Delta: delta,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.ValidateAll(); err != nil {
			t.Fatal(err)
		}
		data, err := protojson.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "envoy.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(envoyBinary(t), "--mode", "validate", "-c", path, "--disable-hot-restart").CombinedOutput()
		if err != nil {
			t.Fatalf("delta=%v: Envoy rejects the bootstrap: %v\n%s", delta, err, out)
		}
	}
	if _, err := Bootstrap(BootstrapOptions{Server: "no-port", TokenFile: "t", ServerName: "n"}); err == nil {
		t.Fatal("a server address without a port must be an error")
	}
}
