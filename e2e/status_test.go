package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/internal/poll"
)

// statusDetail is `wardenctl status POD.NS -o json` with a config diff.
type statusDetail struct {
	Proxy struct {
		Types map[string]struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"types"`
	} `json:"proxy"`
	Diff []struct {
		Type    string   `json:"type"`
		Missing []string `json:"missingInEnvoy"`
		Extra   []string `json:"extraInEnvoy"`
		Differs []string `json:"differs"`
	} `json:"diff"`
}

// TestSyncStatus proves sync tracking against real Envoys: the intent/config_dump diff,
// a NACK shown as ERROR with Envoy's message and not resent in a loop, STALE while an
// Envoy is stopped, a killed Envoy leaving status, the metrics those events cause, and
// the same status over CSDS.
func TestSyncStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d := startDemo(ctx, t, harness.Options{}, nil)
	m, client, fail, apply := d.m, d.client, d.fail, d.write
	both := []string{"client.demo", "server.demo"}

	// The intent/config_dump diff agrees when SYNCED, and notices a missing cluster.
	dump, err := client.Exec(ctx, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:15000/config_dump?include_eds")
	if err != nil {
		fail("config_dump: %v: %s", err, dump)
	}
	detail := func(dump []byte) statusDetail {
		t.Helper()
		path := filepath.Join(t.TempDir(), "dump.json")
		if err := os.WriteFile(path, dump, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, m.Bin.Wardenctl, "status", "client.demo", "--server", m.DebugAddr,
			"--envoy-config-dump", path, "-o", "json").Output()
		if err != nil {
			fail("wardenctl status client.demo: %v", err)
		}
		var d statusDetail
		if err := json.Unmarshal(out, &d); err != nil {
			fail("status detail: %v: %s", err, out)
		}
		return d
	}
	for _, d := range detail(dump).Diff {
		if len(d.Missing)+len(d.Extra)+len(d.Differs) > 0 {
			fail("SYNCED proxy differs from its intent in %s: %+v", d.Type, d)
		}
	}
	cut := regexp.MustCompile(`"name": "outbound\|80\|\|server\.demo\.svc\.cluster\.local"`).ReplaceAll(dump, []byte(`"name": "renamed-by-test"`))
	var sawMissing bool
	for _, d := range detail(cut).Diff {
		if d.Type == "CDS" && strings.Contains(strings.Join(d.Missing, ","), "outbound|80||server.demo.svc.cluster.local") {
			sawMissing = true
		}
	}
	if !sawMissing {
		fail("diff did not report the cluster missing from the edited config_dump")
	}

	// A configuration stock Envoy rejects: TLS origination trusting a CA file that does
	// not exist. Status shows ERROR with Envoy's own message.
	apply("20-dr.yaml", `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: server, namespace: demo}
spec:
  host: server.demo.svc.cluster.local
  trafficPolicy: {tls: {mode: SIMPLE, caCertificates: /nonexistent/warden-test-ca.pem}}
`)
	var nackMsg string
	err = waitUntil(ctx, 30*time.Second, func() error {
		rows, err := m.Status(ctx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.Name == "client" {
				if cds := r.Types["CDS"]; cds.Status == "ERROR" {
					nackMsg = cds.Error
					return nil
				}
				return fmt.Errorf("client CDS is %s", r.Types["CDS"].Status)
			}
		}
		return fmt.Errorf("client not in status")
	})
	if err != nil {
		fail("NACK not shown: %v", err)
	}
	if !strings.Contains(nackMsg, "warden-test-ca.pem") {
		fail("ERROR should carry Envoy's message naming the file, got %q", nackMsg)
	}
	t.Logf("NACK shown as ERROR: %s", nackMsg)
	// No resend loop: the CDS push count stays put while nothing changes.
	pushes := func() float64 { return metric(t, m.DebugAddr, `warden_xds_pushes_total{type="CDS"}`) }
	before := pushes()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if p := pushes(); p != before {
			fail("CDS pushes went from %v to %v with no change: a NACK resend loop", before, p)
		}
		time.Sleep(100 * time.Millisecond) // observing that nothing happens, not waiting for something
	}
	// Both proxies hold the outbound cluster for server.demo, so both reject it, once.
	if n := metric(t, m.DebugAddr, `warden_xds_nacks_total{type="CDS"}`); n != 2 {
		fail("warden_xds_nacks_total{CDS} = %v, want 2 (one per proxy)", n)
	}
	// Fixing the input returns the proxy to SYNCED.
	apply("20-dr.yaml", "")
	if _, err := m.WaitSynced(ctx, both, 30*time.Second); err != nil {
		fail("after fixing the input: %v", err)
	}

	// A stopped Envoy goes STALE after a change, and SYNCED once it runs again.
	if err := client.Envoy.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	apply("10-pa.yaml", peerAuthn("DISABLE")) // changes the client's endpoints (no tlsMode)
	err = waitUntil(ctx, 30*time.Second, func() error {
		rows, err := m.Status(ctx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.Name == "client" && r.Types["EDS"].Status == "STALE" {
				return nil
			}
		}
		return fmt.Errorf("client EDS not STALE yet: %+v", rows)
	})
	if err != nil {
		fail("%v", err)
	}
	if err := client.Envoy.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitSynced(ctx, both, 30*time.Second); err != nil {
		fail("after SIGCONT: %v", err)
	}

	// CSDS on the authenticated xDS port reports the same; a proxy's credential sees
	// only its own node (directory mode has no operator credential for the fleet).
	csds := fetchCSDS(ctx, t, m)
	if len(csds.GetConfig()) != 1 || csds.GetConfig()[0].GetNode().GetId() != "client.demo" {
		fail("CSDS with client.demo's token: %d proxies, want exactly client.demo", len(csds.GetConfig()))
	}
	for _, cc := range csds.GetConfig() {
		for _, g := range cc.GetGenericXdsConfigs() {
			if st := g.GetConfigStatus(); st != statusv3.ConfigStatus_SYNCED && st != statusv3.ConfigStatus_NOT_SENT {
				fail("CSDS %s %s: %v", cc.GetNode().GetId(), g.GetTypeUrl(), st)
			}
		}
	}

	// A killed Envoy leaves status.
	if err := client.Envoy.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitSynced(ctx, []string{"server.demo"}, 30*time.Second); err != nil {
		fail("killed proxy still listed: %v", err)
	}
	if n := metric(t, m.DebugAddr, "warden_xds_connected_proxies"); n != 1 {
		fail("warden_xds_connected_proxies = %v, want 1", n)
	}
	if n := metric(t, m.DebugAddr, "warden_certs_issued_total"); n < 2 {
		fail("warden_certs_issued_total = %v, want at least 2", n)
	}
	if n := metric(t, m.DebugAddr, `warden_xds_convergence_seconds_count{type="LDS"}`); n < 2 {
		fail("convergence histogram saw %v LDS ACKs, want at least 2", n)
	}
}

func waitUntil(ctx context.Context, d time.Duration, f func() error) error {
	var last error
	if err := poll.Until(ctx, d, func() (bool, error) { last = f(); return last == nil, nil }); err != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return nil
}

// metric scrapes one sample from wardend's /metrics (0 when absent).
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	r, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return v
		}
	}
	return 0
}

// fetchCSDS calls CSDS over TLS pinned to the mesh root, with a signed token.
func fetchCSDS(ctx context.Context, t *testing.T, m *harness.Mesh) *statusv3.ClientStatusResponse {
	t.Helper()
	ca, err := certs.LoadOrCreateCA(m.StateDir, "cluster.local", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := certs.LoadOrCreateTokenKey(m.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Sign(certs.TokenClaims{Namespace: "demo", ServiceAccount: "client", Pod: "client"}, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(m.XDSAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: ca.Roots(), ServerName: "wardend.warden-system.svc"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	resp, err := statusv3.NewClientStatusDiscoveryServiceClient(conn).FetchClientStatus(cctx, &statusv3.ClientStatusRequest{})
	if err != nil {
		t.Fatalf("CSDS: %v", err)
	}
	// Without a token CSDS refuses.
	if _, err := statusv3.NewClientStatusDiscoveryServiceClient(conn).FetchClientStatus(ctx, &statusv3.ClientStatusRequest{}); err == nil {
		t.Fatal("CSDS answered without a token")
	}
	return resp
}
