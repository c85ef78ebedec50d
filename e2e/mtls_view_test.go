package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/runner"
	"github.com/wardenmesh/warden/e2e/scenario"
	"github.com/wardenmesh/warden/translate"
)

// TestMTLSViewAgreesWithTraffic runs the Online Boutique scenario and, after every
// plaintext request from outside the mesh to a sidecar's port, checks that
// `wardenctl mtls -A -o json` agrees with what the request got: a connection error
// where it says STRICT, a response where it says PERMISSIVE (or DISABLE).
func TestMTLSViewAgreesWithTraffic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sc, err := scenario.Load("scenarios/mtls-online-boutique.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	hook := func(sc *scenario.Scenario, st *scenario.Step, m *harness.Mesh, passed bool) {
		r := st.Request
		if r == nil || r.From != scenario.Outside || r.To == "" {
			return
		}
		if !passed {
			// The runner reports the step; what the request got is then unknown here.
			t.Errorf("step %q did not get what the scenario expects; agreement not checked", st.Name)
			return
		}
		if msg := checkAgreement(ctx, m, r.To, st.Expect); msg != "" {
			t.Errorf("step %q: %s", st.Name, msg)
		}
		checked++
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sum := runner.Run(ctx, []*scenario.Scenario{sc}, runner.Options{Out: testWriter{t}, Log: log, StepHook: hook})
	if sum.Failed > 0 {
		t.Fatalf("scenario: %d step(s) failed", sum.Failed)
	}
	// Every plaintext request of the scenario targets a pod: all must have been checked.
	want := 0
	for _, st := range sc.Steps {
		if st.Request != nil && st.Request.From == scenario.Outside && st.Request.To != "" {
			want++
		}
	}
	if checked != want || want == 0 {
		t.Fatalf("checked %d plaintext requests against `wardenctl mtls`, want %d", checked, want)
	}
}

// checkAgreement compares one request's outcome (the expectation it met) with what
// `wardenctl mtls -A` reports for the target; it returns "" when they agree.
func checkAgreement(ctx context.Context, m *harness.Mesh, to string, e *scenario.Expect) string {
	rows, err := wardenctlMTLS(ctx, m)
	if err != nil {
		return err.Error()
	}
	return agreement(rows, to, e)
}

// agreement checks the row of the target `ns/pod:port` against the outcome of a
// plaintext request: refused means STRICT, answered means not STRICT. A gateway's
// row has no mode: PeerAuthentication does not apply to it.
func agreement(rows []translate.WorkloadMTLS, to string, e *scenario.Expect) string {
	ref, port, err := scenario.ParsePodPort(to)
	if err != nil {
		return err.Error()
	}
	var row *translate.WorkloadMTLS
	for i := range rows {
		if rows[i].Namespace == ref.Namespace && rows[i].Name == ref.Name {
			row = &rows[i]
		}
	}
	switch {
	case row == nil:
		return fmt.Sprintf("`wardenctl mtls -A` has no row for %s", ref)
	case !row.Connected:
		return fmt.Sprintf("`wardenctl mtls` says the proxy of %s is not connected", ref)
	case row.Proxy == translate.ProxyGateway && row.Mode != "":
		return fmt.Sprintf("gateway %s has mode %s; PeerAuthentication does not apply to gateways", ref, row.Mode)
	case row.Proxy == translate.ProxyGateway:
		return ""
	}
	mode, policy := row.Mode, row.Policy
	for _, p := range row.Ports {
		if p.Port == uint32(port) {
			mode, policy = p.Mode, p.Policy
		}
	}
	switch {
	case e.ConnectionError && mode != "STRICT":
		return fmt.Sprintf("plaintext to %s was refused but `wardenctl mtls` says %s (%s)", to, mode, policy)
	case !e.ConnectionError && mode == "STRICT":
		return fmt.Sprintf("plaintext to %s got status %d but `wardenctl mtls` says STRICT (%s)", to, e.Status, policy)
	}
	return ""
}

func wardenctlMTLS(ctx context.Context, m *harness.Mesh) ([]translate.WorkloadMTLS, error) {
	cmd := exec.CommandContext(ctx, m.Bin.Wardenctl, "mtls", "-A", "-o", "json", "--server", m.DebugAddr)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		return nil, fmt.Errorf("wardenctl mtls: %v: %s", err, stderr)
	}
	var rows []translate.WorkloadMTLS
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("wardenctl mtls -o json: %v: %s", err, out)
	}
	return rows, nil
}

// testWriter sends the runner's PASS/FAIL lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestAgreementRules(t *testing.T) {
	rows := []translate.WorkloadMTLS{
		{Name: "frontend", Namespace: "frontend", Proxy: translate.ProxySidecar, Connected: true, Mode: "PERMISSIVE",
			Policy: translate.MeshDefault, Ports: []translate.PortMTLS{{Port: 8080, Mode: "STRICT", Policy: "frontend/frontend"}}},
		{Name: "currency", Namespace: "currency", Proxy: translate.ProxySidecar, Mode: "PERMISSIVE", Policy: translate.MeshDefault},
		{Name: "gw", Namespace: "istio-system", Proxy: translate.ProxyGateway, Connected: true},
	}
	refused, answered := &scenario.Expect{ConnectionError: true}, &scenario.Expect{Status: 200}
	for _, c := range []struct {
		to    string
		e     *scenario.Expect
		agree bool
	}{
		{"frontend/frontend:8080", refused, true},
		{"frontend/frontend:8080", answered, false},
		{"frontend/frontend:9090", answered, true}, // not listed: workload-wide PERMISSIVE
		{"frontend/frontend:9090", refused, false},
		{"currency/currency:8080", answered, false}, // not connected
		{"istio-system/gw:80", answered, true},
		{"nope/nope:80", answered, false},
	} {
		if got := agreement(rows, c.to, c.e); (got == "") != c.agree {
			t.Errorf("agreement(%s, connectionError=%v) = %q, want agree=%v", c.to, c.e.ConnectionError, got, c.agree)
		}
	}
}
