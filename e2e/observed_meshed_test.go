package e2e

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/wardenmesh/warden/internal/poll"
	"github.com/wardenmesh/warden/xds"
)

// TestObservedCallerMeshed: `wardenctl mtls --observed` shows a plaintext caller of a
// PERMISSIVE port with the warning, and stops showing it (no plaintext entry, no
// warning; its requests counted as meshed) once the caller has been recreated with a
// sidecar and has called again over mTLS. Real Envoy, access logs over gRPC.
func TestObservedCallerMeshed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	scs, err := scenario.LoadDir("testdata/observed-meshed")
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) != 1 {
		t.Fatalf("want one scenario, got %d", len(scs))
	}
	var ip string
	before, after, scraped := false, false, false
	hook := func(sc *scenario.Scenario, st *scenario.Step, m *harness.Mesh, passed bool) {
		r := st.Request
		if r == nil || !passed {
			return
		}
		_, from, tgt, err := stepTarget(m, r)
		if err != nil {
			t.Errorf("%s: %v", st.Name, err)
			return
		}
		ip = from.IP()
		if !from.Opts.Sidecar {
			if err := checkStatsScrape(ctx, m, from, tgt.pod); err != nil {
				t.Errorf("%s: %v", st.Name, err)
			} else {
				scraped = true
			}
			// Plaintext: shown with the warning.
			err := pollObserved(ctx, m, tgt, ip, func(o observedCaller) bool { return o.plaintext > 0 && o.warned && o.mode == "PERMISSIVE" })
			if err != nil {
				t.Errorf("%s: before the caller is meshed: %v", st.Name, err)
			}
			before = err == nil
			return
		}
		// Meshed and called again: no longer a plaintext caller, no warning.
		err = pollObserved(ctx, m, tgt, ip, func(o observedCaller) bool { return o.plaintext == 0 && !o.warned && o.meshed > 0 })
		if err != nil {
			t.Errorf("%s: after the caller is meshed: %v", st.Name, err)
		}
		after = err == nil
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sum := runner.Run(ctx, scs, runner.Options{Out: testWriter{t}, Log: log, StepHook: hook})
	if sum.Failed > 0 {
		t.Errorf("scenario: %d step(s) failed", sum.Failed)
	}
	if !scraped {
		t.Error("the target's Envoy stats were not scraped")
	}
	if !before || !after {
		t.Errorf("compared before meshing %v, after %v (caller %s)", before, after, ip)
	}
}

type observedCaller struct {
	mode              string
	plaintext, meshed int
	warned            bool
}

// pollObserved reads `wardenctl mtls --observed -A -o json` until ok holds for the
// caller ip at the target port, or fails with the last view after a deadline.
func pollObserved(ctx context.Context, m *harness.Mesh, tgt replayTargetPod, ip string, ok func(observedCaller) bool) error {
	var last error
	err := poll.Until(ctx, 15*time.Second, func() (bool, error) {
		var v struct {
			Workloads []struct {
				Name, Namespace string
				Ports           []struct {
					Port uint32
					Mode string
				}
			}
			Observed []xds.ObservedPort
			Warnings []string
		}
		out, err := exec.CommandContext(ctx, m.Bin.Wardenctl, "mtls", "--observed", "-A", "--server", m.DebugAddr, "-o", "json").Output()
		if err != nil {
			return false, fmt.Errorf("wardenctl mtls --observed: %v: %s", err, out)
		}
		if err := json.Unmarshal(out, &v); err != nil {
			return false, fmt.Errorf("wardenctl mtls --observed -o json: %v: %s", err, out)
		}
		var o observedCaller
		for _, w := range v.Workloads {
			for _, p := range w.Ports {
				if w.Name+"."+w.Namespace == tgt.pod.ID() && p.Port == tgt.port {
					o.mode = p.Mode
				}
			}
		}
		for _, p := range v.Observed {
			if p.Proxy == tgt.pod.ID() && p.Port == tgt.port {
				o.plaintext, o.meshed = p.Plaintext[ip], p.Meshed[ip]
			}
		}
		for _, w := range v.Warnings {
			o.warned = o.warned || (strings.Contains(w, tgt.pod.ID()+" port ") && strings.Contains(w, ip))
		}
		last = fmt.Errorf("caller %s of %s:%d: %+v; observed %+v, warnings %q", ip, tgt.pod.ID(), tgt.port, o, v.Observed, v.Warnings)
		return ok(o), nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return last
	}
	return err
}

// checkStatsScrape: another pod reaches the target proxy's own Envoy stats on
// <pod IP>:15090/stats/prometheus (as a Prometheus scraper would), and nothing else
// of Envoy's admin there (config_dump answers 404).
func checkStatsScrape(ctx context.Context, m *harness.Mesh, from, target *harness.Pod) error {
	get := func(path string) (harness.Result, error) {
		u := fmt.Sprintf("http://%s:%d%s", target.IP(), xds.DefaultStatsPort, path)
		return sendAgain(ctx, m, from, &scenario.Request{URL: u, Method: "GET"}, "", "")
	}
	res, err := get("/stats/prometheus")
	if err != nil {
		return err
	}
	if res.Status != 200 || !strings.Contains(res.Body, "envoy_server_live") {
		return fmt.Errorf("GET %s:%d/stats/prometheus from %s: %s, want 200 with envoy_server_live", target.ID(), xds.DefaultStatsPort, from.ID(), res)
	}
	res, err = get("/config_dump")
	if err != nil {
		return err
	}
	if res.Status != 404 {
		return fmt.Errorf("GET %s:%d/config_dump: %s, want 404 (only the stats are exposed)", target.ID(), xds.DefaultStatsPort, res)
	}
	return nil
}
