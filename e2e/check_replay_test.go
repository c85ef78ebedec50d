package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/runner"
	"github.com/wardenmesh/warden/e2e/scenario"
	"github.com/wardenmesh/warden/translate/authz"
	"github.com/wardenmesh/warden/watch"
)

// minCompared is the share of HTTP request steps that must be compared, so that the
// test cannot pass by skipping.
const minCompared = 0.8

// TestCheckAgreesWithEnvoy runs every scenario and replays each HTTP request step that
// passed through `wardenctl check` against the live wardend: the decision check
// explains for the first proxy on the request's path must be what Envoy did.
func TestCheckAgreesWithEnvoy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	scs, err := scenario.LoadDir("scenarios")
	if err != nil {
		t.Fatal(err)
	}
	var tally replayTally
	var denials denialTally
	extra := newDenialExtras(ctx, t)
	hook := func(sc *scenario.Scenario, st *scenario.Step, m *harness.Mesh, passed bool) {
		if extra.covers(sc) {
			// After the replay: TCP denials, dry-run, plaintext callers, previews.
			defer extra.step(sc, st, m, passed)
		}
		if st.Request == nil || st.Request.IsTCP() {
			return
		}
		tally.total++
		where := sc.Name + "/" + st.Name
		// A step that expects 403 is a denied HTTP step: it is compared with
		// `wardenctl denials` below, or its exclusion is counted with the reason.
		denied := !st.Expect.ConnectionError && st.Expect.Status == 403
		exclude := func(reason string) {
			if denied {
				denials.exclude(reason)
			}
		}
		if !passed {
			tally.skip("the step failed (the runner reports it)")
			exclude("the step failed (the runner reports it)")
			return
		}
		if outsideMesh(sc, st.Request) {
			// An external host (format "egress"): no proxy of the mesh decides there,
			// and check evaluates workloads only.
			tally.skip("the target is an external host, outside the mesh")
			exclude("the target is an external host, outside the mesh")
			return
		}
		if st.Request.TLS != nil && st.Expect.ConnectionError {
			// The gateway refused the TLS handshake (certificate, version, SNI):
			// check explains HTTP authorization, which such a request never reaches.
			tally.skip("a TLS handshake refused it, before any HTTP authorization")
			return
		}
		rp, skip, disagree, err := replayStep(ctx, m, st, sc.Dir)
		switch {
		case err != nil:
			tally.disagreements = append(tally.disagreements, where+": "+err.Error())
			exclude("the replay failed (reported as a disagreement)")
		case skip != "":
			tally.skip(skip)
			exclude(skip)
		case disagree != "":
			tally.disagreements = append(tally.disagreements, where+": "+disagree)
			exclude("check disagreed with Envoy (reported as a disagreement)")
		default:
			tally.agreed++
			if denied {
				if err := denials.compare(ctx, m, st, rp); err != nil {
					tally.disagreements = append(tally.disagreements, where+": wardenctl denials: "+err.Error())
				}
			}
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sum := runner.Run(ctx, scs, runner.Options{Out: testWriter{t}, Log: log, StepHook: hook})
	extra.finish()
	t.Log(tally.summary())
	t.Log(denials.summary())
	if denials.total() == 0 {
		t.Error("no denied HTTP step compared with wardenctl denials")
	}
	if denials.gateway == 0 {
		t.Error("no denial at an ingress gateway compared with wardenctl denials")
	}
	for _, d := range tally.disagreements {
		t.Errorf("check disagrees with Envoy: %s", d)
	}
	if sum.Failed > 0 {
		t.Errorf("scenarios: %d step(s) failed", sum.Failed)
	}
	compared := tally.agreed + len(tally.disagreements)
	if tally.total == 0 || float64(compared) < minCompared*float64(tally.total) {
		t.Errorf("compared %d of %d HTTP request steps, want at least %.0f%%", compared, tally.total, minCompared*100)
	}
}

// outsideMesh reports whether the request goes to one of the scenario's external hosts.
func outsideMesh(sc *scenario.Scenario, r *scenario.Request) bool {
	if r.To != "" {
		return false
	}
	host, _, err := scenario.ParseHostPort(r.Address())
	if err != nil {
		return false
	}
	for _, e := range sc.Externals {
		if e.Name == host {
			return true
		}
	}
	return false
}

// replayStep sends the step's request again to read Envoy's full answer, asks check
// about the first proxy on its path, and compares.
func replayStep(ctx context.Context, m *harness.Mesh, st *scenario.Step, dir string) (rp replayed, skip, disagree string, err error) {
	r := st.Request
	in, _, err := watch.LoadDir(m.ConfigDir)
	if err != nil {
		return rp, "", "", fmt.Errorf("load the mesh configuration: %w", err)
	}
	from := m.Pod("client.outside")
	if r.From != scenario.Outside {
		ref, err := scenario.ParsePodRef(r.From)
		if err != nil {
			return rp, "", "", err
		}
		from = m.Pod(ref.Name + "." + ref.Namespace)
	}
	if from == nil {
		return rp, "", "", fmt.Errorf("no caller pod %s", r.From)
	}
	tgt, err := replayTarget(in, m, r, from.Opts.Namespace)
	if err != nil {
		return rp, "", "", err
	}
	rp.tgt, rp.sent = tgt, time.Now()
	res, err := sendAgain(ctx, m, from, r, tgt.connect, dir)
	if err != nil {
		return rp, "", "", err
	}
	rp.res = res
	if e := st.Expect; res.ConnectionError != e.ConnectionError || (!e.ConnectionError && res.Status != e.Status) {
		return rp, "", "", fmt.Errorf("sent again, the request got %s, the step %s", res, expectString(e))
	}
	envoy, skip := envoyDecision(res)
	if skip != "" {
		return rp, skip, "", nil
	}
	if !tgt.pod.Opts.Sidecar && !tgt.pod.Opts.Gateway {
		return rp, "the target has no proxy", "", nil
	}
	cr, err := wardenctlCheck(ctx, m, in, from, tgt, r)
	if err != nil {
		return rp, "", "", err
	}
	rp.cr = cr
	skip, disagree = compareDecisions(envoy, cr, r.Headers)
	if disagree != "" {
		disagree = fmt.Sprintf("%s %s from %s to %s: %s (Envoy answered %s)", r.Method, r.URL, r.From, tgt.pod.ID(), disagree, res)
	}
	return rp, skip, disagree, nil
}

// replayed is what the replay of one step sent, got and was told by check.
type replayed struct {
	tgt  replayTargetPod
	sent time.Time // just before the request was sent again
	res  harness.Result
	cr   authz.CheckResult
}

func expectString(e *scenario.Expect) string {
	if e.ConnectionError {
		return "expects a connection error"
	}
	return "expects status " + strconv.Itoa(e.Status)
}

// replayTargetPod is the first proxy on a request's path and its container port.
type replayTargetPod struct {
	pod     *harness.Pod
	port    uint32
	connect string // ip:port to dial instead of the URL's host, for `to`
}

// replayTarget resolves the request's target as the runner does: the `to` pod and
// port, else the URL's host as cluster DNS resolves it from the caller's namespace,
// to its Service's first ready endpoint and target port.
func replayTarget(in *watch.Input, m *harness.Mesh, r *scenario.Request, callerNS string) (replayTargetPod, error) {
	if r.To != "" {
		ref, port, err := scenario.ParsePodPort(r.To)
		if err != nil {
			return replayTargetPod{}, err
		}
		p := m.Pod(ref.Name + "." + ref.Namespace)
		if p == nil {
			return replayTargetPod{}, fmt.Errorf("request.to: no pod %s", ref)
		}
		return replayTargetPod{pod: p, port: uint32(port), connect: p.IP() + ":" + strconv.Itoa(port)}, nil
	}
	host, port, err := scenario.ParseHostPort(r.Address())
	if err != nil {
		return replayTargetPod{}, err
	}
	svc := serviceByDNS(in, callerNS, host)
	if svc == nil {
		return replayTargetPod{}, fmt.Errorf("%s is no Service seen from namespace %s", host, callerNS)
	}
	for _, sp := range svc.Ports {
		if int(sp.Port) != port {
			continue
		}
		for _, ep := range in.Endpoints(svc, sp) {
			if ep.Workload == nil {
				continue
			}
			if p := m.Pod(ep.Workload.PodName + "." + ep.Workload.Namespace); p != nil {
				return replayTargetPod{pod: p, port: ep.Port}, nil
			}
		}
	}
	return replayTargetPod{}, fmt.Errorf("service %s/%s has no ready endpoint on port %d", svc.Namespace, svc.Name, port)
}

// serviceByDNS finds the Service host names from namespace ns: name (same namespace),
// name.ns, name.ns.svc and name.ns.svc.<domain suffix>.
func serviceByDNS(in *watch.Input, ns, host string) *watch.Service {
	for _, svc := range in.Services {
		names := []string{svc.Name + "." + svc.Namespace, svc.Name + "." + svc.Namespace + ".svc",
			svc.Name + "." + svc.Namespace + ".svc." + in.DomainSuffix}
		if svc.Namespace == ns {
			names = append(names, svc.Name)
		}
		if slices.Contains(names, host) {
			return svc
		}
	}
	return nil
}

// sendAgain sends the step's request once more from the caller, as the runner does.
func sendAgain(ctx context.Context, m *harness.Mesh, from *harness.Pod, r *scenario.Request, connect, dir string) (harness.Result, error) {
	args := []string{m.Bin.App, "request", "-url", r.URL, "-method", r.Method, "-timeout", "5s"}
	if t := r.TLS; t != nil {
		// The same handshake as the step's (request.tls, files beside the scenario).
		abs := func(p string) string {
			if filepath.IsAbs(p) {
				return p
			}
			return filepath.Join(dir, p)
		}
		args = append(args, "-ca", abs(t.CA))
		if t.SNI != "" {
			args = append(args, "-sni", t.SNI)
		}
		if t.ClientCert != "" {
			args = append(args, "-cert", abs(t.ClientCert), "-key", abs(t.ClientKey))
		}
		if t.MaxVersion != "" {
			args = append(args, "-tls-max", t.MaxVersion)
		}
	}
	if connect != "" {
		args = append(args, "-connect", connect)
	}
	if r.Body != "" {
		args = append(args, "-body", r.Body)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
		args = append(args, "-header", k+"="+r.Headers[k])
	}
	out, err := from.Exec(ctx, args...)
	if err != nil {
		return harness.Result{}, fmt.Errorf("request from %s: %v: %s", from.ID(), err, out)
	}
	var res harness.Result
	if err := json.Unmarshal(out, &res); err != nil {
		return harness.Result{}, fmt.Errorf("request from %s: bad output %q: %w", from.ID(), out, err)
	}
	return res, nil
}

// wardenctlCheck asks the live wardend, through `wardenctl check`, about the request
// at the target proxy: a caller with a sidecar by pod (its identity), any other caller
// by its address alone; claims only of the tokens jwt_authn verified.
func wardenctlCheck(ctx context.Context, m *harness.Mesh, in *watch.Input, from *harness.Pod, tgt replayTargetPod, r *scenario.Request) (authz.CheckResult, error) {
	args := []string{"check", tgt.pod.ID(), "--server", m.DebugAddr, "-o", "json",
		"--method", r.Method, "--path", r.Path(), "--host", r.HostHeader(),
		"--port", strconv.FormatUint(uint64(tgt.port), 10)}
	if from.Opts.Sidecar && r.From != scenario.Outside {
		args = append(args, "--from-pod", from.ID())
	} else {
		args = append(args, "--source-ip", from.IP())
	}
	for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
		args = append(args, "--header", k+"="+r.Headers[k])
	}
	w := in.WorkloadByPod(tgt.pod.Opts.Namespace, tgt.pod.Opts.Name)
	if w != nil {
		if claims := verifiedClaims(in, w, r); claims != nil {
			b, err := json.Marshal(claims)
			if err != nil {
				return authz.CheckResult{}, err
			}
			args = append(args, "--claims", string(b))
		}
	}
	out, err := exec.CommandContext(ctx, m.Bin.Wardenctl, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return authz.CheckResult{}, fmt.Errorf("wardenctl %v: %v: %s", args, err, ee.Stderr)
		}
		return authz.CheckResult{}, fmt.Errorf("wardenctl check: %w", err)
	}
	var cr authz.CheckResult
	if err := json.Unmarshal(out, &cr); err != nil {
		return authz.CheckResult{}, fmt.Errorf("wardenctl check -o json: %v: %s", err, out)
	}
	return cr, nil
}
