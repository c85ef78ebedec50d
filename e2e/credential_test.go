package e2e

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/e2e/harness"
)

// TestCredentialFileNotInAdminAndRotated: stock Envoy's admin never shows the xDS
// credential (the bootstrap names a file, and Envoy redacts even that); Envoy reads the file on every connection, so
// after a wardend restart a proxy whose token in the file has expired is refused, and
// once the file is rewritten (as a kubelet rotates a projected token, or `wardenctl
// token` in directory mode) the same Envoy process reconnects and serves mTLS again.
func TestCredentialFileNotInAdminAndRotated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := startDemo(ctx, t, harness.Options{}, map[string]string{"10-strict.yaml": peerAuthn("STRICT")})
	m, client, fail := d.m, d.client, d.fail

	tokFile := client.TokenFile()
	tok, err := os.ReadFile(tokFile)
	if err != nil || len(tok) < 100 {
		fail("client's token file %s: %v (%d bytes)", tokFile, err, len(tok))
	}
	if fi, err := os.Stat(tokFile); err != nil || fi.Mode().Perm() != 0o600 {
		fail("token file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	// The whole admin config dump (bootstrap included), as any container of the pod sees it.
	out, err := client.Exec(ctx, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:15000/config_dump?include_eds")
	if err != nil {
		fail("config_dump: %v: %s", err, out)
	}
	dump := string(out)
	sig := string(tok[strings.LastIndex(string(tok), ".")+1:])
	if strings.Contains(dump, string(tok)) || strings.Contains(dump, sig) {
		fail("Envoy's config_dump contains the xDS token")
	}
	// Envoy marks the plugin's secret_data sensitive: even the path is redacted.
	if !strings.Contains(dump, `"credentials_factory_name": "envoy.grpc_credentials.file_based_metadata"`) {
		fail("the xDS client does not read its credential from a file: is the credential where the test thinks?")
	}
	if strings.Contains(dump, "PRIVATE KEY") {
		fail("config_dump contains private key material")
	}
	envoyPID := client.Envoy.Pid()

	// An expired token in the file: after a restart, wardend refuses the proxy.
	signer, err := certs.LoadOrCreateTokenKey(m.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := signer.Sign(certs.TokenClaims{Namespace: "demo", ServiceAccount: "client", Pod: "client",
		Labels: map[string]string{"app": "client"}}, time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeOwned(tokFile, expired); err != nil {
		t.Fatal(err)
	}
	if err := m.RestartWardend(ctx); err != nil {
		fail("%v", err)
	}
	if err := waitUntil(ctx, 60*time.Second, func() error {
		if !strings.Contains(m.WardendLog(), "token expired") {
			return errString("wardend has not yet refused the expired token")
		}
		return nil
	}); err != nil {
		fail("%v", err)
	}
	if rows, err := m.Status(ctx); err == nil {
		for _, r := range rows {
			if r.Name == "client" && r.Namespace == "demo" {
				fail("client.demo is connected with an expired token: %+v", r)
			}
		}
	}

	// "The kubelet rotates the token": a fresh one in the same file, no Envoy restart.
	if out, err := exec.CommandContext(ctx, m.Bin.Wardenctl, "token", "--namespace", "demo", "--service-account", "client",
		"--pod", "client", "--labels", "app=client", "--ips", client.IP(), "--state-dir", m.StateDir, "--token-ttl", "1h",
		"--token-owner", strconv.Itoa(harness.ProxyUID), "-o", tokFile).CombinedOutput(); err != nil {
		fail("wardenctl token: %v: %s", err, out)
	}
	if _, err := m.WaitSynced(ctx, []string{"server.demo", "client.demo"}, 90*time.Second); err != nil {
		fail("after rotation: %v", err)
	}
	if client.Envoy.Pid() != envoyPID {
		fail("Envoy was restarted (pid %d -> %d); the rotation must be picked up by the running process", envoyPID, client.Envoy.Pid())
	}
	r, err := m.Request(ctx, client, "GET", "http://server.demo/hello", nil)
	if err != nil {
		fail("%v", err)
	}
	if r.Status != 200 || !strings.Contains(r.Body, "URI=spiffe://cluster.local/ns/demo/sa/client") {
		fail("client -> server after rotation: want 200 over mTLS, got %s %s", r, r.Body)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// writeOwned replaces path with data, mode 0600, owned by the proxy's uid.
func writeOwned(path, data string) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return err
	}
	if err := os.Chown(tmp, harness.ProxyUID, harness.ProxyUID); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
