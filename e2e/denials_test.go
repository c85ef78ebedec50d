package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/runner"
	"github.com/wardenmesh/warden/e2e/scenario"
	"github.com/wardenmesh/warden/watch"
	"github.com/wardenmesh/warden/xds"
)

// denialScenarios are the public scenarios with RBAC denials of HTTP requests.
var denialScenarios = []string{"authz-deny-before-allow", "authz-ch9-deny-all-mesh"}

// TestDenialsNameTheRuleCheckNames: after every denied HTTP step, the access log entry
// the target's stock Envoy sent to wardend shows up in `wardenctl denials` with the
// very rule `wardenctl check` names for that request ("no ALLOW policy matched" when
// check names none).
func TestDenialsNameTheRuleCheckNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	all, err := scenario.LoadDir("scenarios")
	if err != nil {
		t.Fatal(err)
	}
	var scs []*scenario.Scenario
	for _, sc := range all {
		for _, n := range denialScenarios {
			if sc.Name == n {
				scs = append(scs, sc)
			}
		}
	}
	if len(scs) != len(denialScenarios) {
		t.Fatalf("found %d of the scenarios %v", len(scs), denialScenarios)
	}
	compared := 0
	hook := func(sc *scenario.Scenario, st *scenario.Step, m *harness.Mesh, passed bool) {
		r := st.Request
		if r == nil || r.IsTCP() || !passed || st.Expect.ConnectionError || st.Expect.Status != 403 {
			return
		}
		where := sc.Name + "/" + st.Name
		if err := compareDenial(ctx, m, st); err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		compared++
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sum := runner.Run(ctx, scs, runner.Options{Out: testWriter{t}, Log: log, StepHook: hook})
	if sum.Failed > 0 {
		t.Errorf("scenarios: %d step(s) failed", sum.Failed)
	}
	if compared == 0 {
		t.Error("no denied HTTP step compared")
	}
	t.Logf("compared %d denied HTTP steps", compared)
}

func compareDenial(ctx context.Context, m *harness.Mesh, st *scenario.Step) error {
	r := st.Request
	in, _, err := watch.LoadDir(m.ConfigDir)
	if err != nil {
		return err
	}
	from := m.Pod("client.outside")
	if r.From != scenario.Outside {
		ref, err := scenario.ParsePodRef(r.From)
		if err != nil {
			return err
		}
		from = m.Pod(ref.Name + "." + ref.Namespace)
	}
	tgt, err := replayTarget(in, m, r, from.Opts.Namespace)
	if err != nil {
		return err
	}
	if !tgt.pod.Opts.Sidecar {
		return nil
	}
	cr, err := wardenctlCheck(ctx, m, in, from, tgt, r)
	if err != nil {
		return err
	}
	if cr.Decision != "DENY" {
		return fmt.Errorf("check says %s (%s) for a step that expects 403", cr.Decision, describeCheck(cr))
	}
	want := xds.NoAllowMatched
	if cr.Rule != nil {
		want = cr.Rule.Rule
	}
	// Envoy flushes its access log buffer each second: poll for the entry.
	deadline := time.Now().Add(15 * time.Second)
	var last xds.DenialsResponse
	for {
		last, err = wardenctlDenials(ctx, m, tgt.pod.ID())
		if err != nil {
			return err
		}
		for _, e := range last.Entries {
			if e.Method == r.Method && e.Path == r.Path() && e.Port == tgt.port {
				if e.Policy != want {
					return fmt.Errorf("wardenctl denials names %q, check names %q (%s)", e.Policy, want, describeCheck(cr))
				}
				if e.FilterChain == "" || e.Peer == "" {
					return fmt.Errorf("entry without filter chain or peer: %+v", e)
				}
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no denial of %s %s at %s:%d in wardenctl denials (%d entries: %+v)", r.Method, r.Path(), tgt.pod.ID(), tgt.port, len(last.Entries), last.Entries)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func wardenctlDenials(ctx context.Context, m *harness.Mesh, pod string) (xds.DenialsResponse, error) {
	var resp xds.DenialsResponse
	out, err := exec.CommandContext(ctx, m.Bin.Wardenctl, "denials", pod, "--server", m.DebugAddr, "-o", "json", "--since", "10m").Output()
	if err != nil {
		return resp, fmt.Errorf("wardenctl denials: %v: %s", err, out)
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return resp, fmt.Errorf("wardenctl denials -o json: %v: %s", err, out)
	}
	return resp, nil
}
