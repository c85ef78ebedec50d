package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/scenario"
	"github.com/wardenmesh/warden/internal/poll"
	"github.com/wardenmesh/warden/watch"
	"github.com/wardenmesh/warden/xds"
)

// denialScenarios are the public scenarios whose runs in TestCheckAgreesWithEnvoy
// also compare what the replay does not: authz-dry-run has dry-run policies whose
// would-be denials must be counted while the requests pass; authz-tcp's connections
// are denied by the network RBAC filter (tcp_grpc logger); together they have
// plaintext callers of PERMISSIVE ports and apply steps to preview.
var denialScenarios = []string{"authz-deny-before-allow", "authz-ch9-deny-all-mesh", "authz-dry-run",
	"authz-ingress-gateway", "authz-tcp"}

// denialTally counts the denied HTTP steps (403) the check replay compared with
// `wardenctl denials`, per category, and those it did not, per reason.
type denialTally struct {
	compared map[string]int
	excluded map[string]int
	gateway  int
}

func (d *denialTally) exclude(reason string) {
	if d.excluded == nil {
		d.excluded = map[string]int{}
	}
	d.excluded[reason]++
}

func (d *denialTally) total() int {
	n := 0
	for _, c := range d.compared {
		n += c
	}
	return n
}

func (d *denialTally) summary() string {
	list := func(m map[string]int) string {
		var out []string
		n := 0
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, fmt.Sprintf("%s: %d", k, m[k]))
			n += m[k]
		}
		return fmt.Sprintf("%d (%s)", n, strings.Join(out, "; "))
	}
	return "denied HTTP steps compared with wardenctl denials: " + list(d.compared) + "; not compared: " + list(d.excluded)
}

// compare: after a denied HTTP step that check agreed Envoy's RBAC filter denied, the
// access log entry of the replayed request shows up in `wardenctl denials` with the
// very rule check names ("no ALLOW policy matched" when check names none). A 403 that
// is not the RBAC filter's is counted as excluded.
func (d *denialTally) compare(ctx context.Context, m *harness.Mesh, st *scenario.Step, rp replayed) error {
	if !strings.Contains(rp.res.Body, "RBAC: access denied") {
		d.exclude("a 403 without the RBAC filter's body (not an RBAC denial)")
		return nil
	}
	if rp.cr.Decision != "DENY" {
		return fmt.Errorf("check says %s (%s) for an RBAC 403", rp.cr.Decision, describeCheck(rp.cr))
	}
	want, kind := xds.NoAllowMatched, "no ALLOW policy matched"
	if rp.cr.Rule != nil {
		want, kind = rp.cr.Rule.Rule, "a DENY rule"
	}
	at := "at a sidecar"
	if rp.tgt.pod.Opts.Gateway {
		at = "at an ingress gateway"
	}
	if err := pollDenial(ctx, m, st.Request, rp.tgt, false, rp.sent, want, describeCheck(rp.cr)); err != nil {
		return err
	}
	if d.compared == nil {
		d.compared = map[string]int{}
	}
	d.compared[at+", "+kind]++
	if rp.tgt.pod.Opts.Gateway {
		d.gateway++
	}
	return nil
}

// denialExtras compares, for the denialScenarios as TestCheckAgreesWithEnvoy runs
// them, what its replay does not: TCP denials, dry-run would-be denials, plaintext
// callers in `mtls --observed`, and `check --observed` previews before apply steps.
type denialExtras struct {
	ctx                        context.Context
	t                          *testing.T
	dryCompared, observed, tcp int
	previewed                  int
	tcpSeen                    map[string]time.Time // newest TCP denial compared, per pod, port and caller
	pending                    *previewRun
	scenarios                  map[string]bool // name -> it ran
}

func newDenialExtras(ctx context.Context, t *testing.T) *denialExtras {
	d := &denialExtras{ctx: ctx, t: t, tcpSeen: map[string]time.Time{}, scenarios: map[string]bool{}}
	for _, n := range denialScenarios {
		d.scenarios[n] = false // not run yet
	}
	return d
}

func (d *denialExtras) covers(sc *scenario.Scenario) bool {
	if _, ok := d.scenarios[sc.Name]; !ok {
		return false
	}
	d.scenarios[sc.Name] = true // ran
	return true
}

// step runs after the step's own checks and the replay, which wait for its entries
// in the window.
func (d *denialExtras) step(sc *scenario.Scenario, st *scenario.Step, m *harness.Mesh, passed bool) {
	t, ctx := d.t, d.ctx
	r := st.Request
	where := sc.Name + "/" + st.Name
	if d.pending != nil && d.pending.sc != sc {
		d.previewed += d.pending.finish(t)
		d.pending = nil
	}
	if r != nil && passed && !r.IsTCP() && d.pending != nil {
		d.pending.observe(m, st)
	}
	// The preview: before an apply step, `check --observed -f` the applied manifests;
	// the flips it names must be what the following request steps then see.
	defer func() {
		if next := nextStep(sc, st); next != nil && len(next.Apply) > 0 && passed {
			if d.pending != nil {
				d.previewed += d.pending.finish(t)
			}
			p, err := startPreview(ctx, m, sc, next)
			if err != nil {
				t.Errorf("%s: preview: %v", where, err)
			}
			d.pending = p
		}
	}()
	if r != nil && r.IsTCP() && passed && st.Expect.ConnectionError {
		n, err := compareTCPDenial(ctx, m, st, d.tcpSeen)
		if err != nil {
			t.Errorf("%s: %v", where, err)
		}
		d.tcp += n
		return
	}
	if r == nil || r.IsTCP() || !passed || st.Expect.ConnectionError {
		return
	}
	n, err := compareObserved(ctx, m, sc, st)
	if err != nil {
		t.Errorf("%s: %v", where, err)
	}
	d.observed += n
	if n > 0 {
		t.Logf("%s: plaintext caller seen in mtls --observed (status %d)", where, st.Expect.Status)
	}
	if st.Expect.Status != 403 {
		n, err := compareDryRun(ctx, m, st)
		if err != nil {
			t.Errorf("%s: %v", where, err)
		}
		d.dryCompared += n
	}
}

func (d *denialExtras) finish() {
	t := d.t
	if d.pending != nil {
		d.previewed += d.pending.finish(t)
		d.pending = nil
	}
	for _, n := range slices.Sorted(maps.Keys(d.scenarios)) {
		if !d.scenarios[n] {
			t.Errorf("the scenario %s did not run", n)
		}
	}
	if d.previewed == 0 {
		t.Error("no preview flip confirmed")
	}
	if d.observed == 0 {
		t.Error("no plaintext caller compared with mtls --observed")
	}
	if d.dryCompared == 0 {
		t.Error("no dry-run denial compared")
	}
	if d.tcp == 0 {
		t.Error("no TCP denial compared")
	}
	t.Logf("in %v: %d TCP denials, %d dry-run would-be denials, %d plaintext callers, %d previewed flips compared",
		denialScenarios, d.tcp, d.dryCompared, d.observed, d.previewed)
}

// stepTarget resolves a step's caller and first proxy as the check replay does.
func stepTarget(m *harness.Mesh, r *scenario.Request) (*watch.Input, *harness.Pod, replayTargetPod, error) {
	in, _, err := watch.LoadDir(m.ConfigDir)
	if err != nil {
		return nil, nil, replayTargetPod{}, err
	}
	from := m.Pod("client.outside")
	if r.From != scenario.Outside {
		ref, err := scenario.ParsePodRef(r.From)
		if err != nil {
			return nil, nil, replayTargetPod{}, err
		}
		from = m.Pod(ref.Name + "." + ref.Namespace)
	}
	tgt, err := replayTarget(in, m, r, from.Opts.Namespace)
	return in, from, tgt, err
}

// compareTCPDenial: a TCP step whose connection fails and that check says RBAC denies
// shows up in `wardenctl denials` as a TCP entry from the caller to the port, newer
// than the last one compared there, with the rule check names. Connection errors that
// check says are allowed (mTLS refusals) are not RBAC's and are skipped. It returns 1
// when compared.
func compareTCPDenial(ctx context.Context, m *harness.Mesh, st *scenario.Step, seen map[string]time.Time) (int, error) {
	r := st.Request
	in, from, tgt, err := stepTarget(m, r)
	if err != nil || !tgt.pod.Opts.Sidecar {
		return 0, err
	}
	cr, err := wardenctlCheck(ctx, m, in, from, tgt, r)
	if err != nil {
		return 0, err
	}
	if cr.Decision != "DENY" {
		return 0, nil
	}
	if cr.Protocol != "TCP" {
		return 0, fmt.Errorf("check evaluated the TCP step as %s (%s)", cr.Protocol, describeCheck(cr))
	}
	want := xds.NoAllowMatched
	if cr.Rule != nil {
		want = cr.Rule.Rule
	}
	key := fmt.Sprintf("%s:%d<-%s", tgt.pod.ID(), tgt.port, from.IP())
	var last xds.DenialsResponse
	err = poll.Until(ctx, 15*time.Second, func() (bool, error) {
		if last, err = wardenctlDenials(ctx, m, tgt.pod.ID(), false); err != nil {
			return false, err
		}
		for _, e := range last.Entries { // newest first
			if e.Protocol != "TCP" || e.Port != tgt.port || !strings.HasPrefix(e.Source, from.IP()+":") || !e.Time.After(seen[key]) {
				continue
			}
			seen[key] = e.Time
			if e.Policy != want {
				return false, fmt.Errorf("wardenctl denials names %q for the TCP connection, check names %q (%s)", e.Policy, want, describeCheck(cr))
			}
			if e.FilterChain == "" || e.Peer == "" {
				return false, fmt.Errorf("entry without filter chain or peer: %+v", e)
			}
			return true, nil
		}
		return false, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return 0, fmt.Errorf("no new TCP denial at %s:%d from %s in wardenctl denials (%d entries: %+v)", tgt.pod.ID(), tgt.port, from.IP(), len(last.Entries), last.Entries)
	}
	if err != nil {
		return 0, err
	}
	return 1, nil
}

// compareDryRun: for an allowed step that check says a dry-run policy would deny,
// `wardenctl denials --dry-run` shows it with that rule. It returns 1 when compared.
func compareDryRun(ctx context.Context, m *harness.Mesh, st *scenario.Step) (int, error) {
	r := st.Request
	in, from, tgt, err := stepTarget(m, r)
	if err != nil || !tgt.pod.Opts.Sidecar {
		return 0, err
	}
	cr, err := wardenctlCheck(ctx, m, in, from, tgt, r)
	if err != nil {
		return 0, err
	}
	want := ""
	for _, d := range cr.DryRun {
		if d.Decision != "DENY" {
			continue
		}
		if d.Action == "DENY" && d.Matched != nil {
			want = d.Matched.Rule
			break
		}
		if d.Action == "ALLOW" {
			want = xds.NoAllowMatched
		}
	}
	if want == "" {
		return 0, nil
	}
	return 1, pollDenial(ctx, m, r, tgt, true, time.Time{}, want, describeCheck(cr))
}

// pollDenial waits for the step's entry in `wardenctl denials [--dry-run]`, of a
// request started after since, and compares its rule with want. Envoy flushes its
// access log buffer each second.
func pollDenial(ctx context.Context, m *harness.Mesh, r *scenario.Request, tgt replayTargetPod, dry bool, since time.Time, want, check string) error {
	var last xds.DenialsResponse
	err := poll.Until(ctx, 15*time.Second, func() (bool, error) {
		var err error
		if last, err = wardenctlDenials(ctx, m, tgt.pod.ID(), dry); err != nil {
			return false, err
		}
		for _, e := range last.Entries {
			if e.Method != r.Method || e.Path != r.Path() || e.Port != tgt.port || e.Time.Before(since) {
				continue
			}
			got := e.Policy
			if dry {
				got = e.DryRunPolicy
				if e.Denied {
					return false, fmt.Errorf("a dry-run denial was enforced: %+v", e)
				}
			}
			if got != want {
				return false, fmt.Errorf("wardenctl denials (dry-run %v) names %q, check names %q (%s)", dry, got, want, check)
			}
			if e.FilterChain == "" || e.Peer == "" {
				return false, fmt.Errorf("entry without filter chain or peer: %+v", e)
			}
			return true, nil
		}
		return false, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no denial of %s %s at %s:%d since %s in wardenctl denials (%d entries: %+v)", r.Method, r.Path(), tgt.pod.ID(), tgt.port, since.Format(time.RFC3339Nano), len(last.Entries), last.Entries)
	}
	return err
}

func wardenctlDenials(ctx context.Context, m *harness.Mesh, pod string, dry bool) (xds.DenialsResponse, error) {
	var resp xds.DenialsResponse
	args := []string{"denials", pod, "--server", m.DebugAddr, "-o", "json", "--since", "10m"}
	if dry {
		args = append(args, "--dry-run")
	}
	out, err := exec.CommandContext(ctx, m.Bin.Wardenctl, args...).Output()
	if err != nil {
		return resp, fmt.Errorf("wardenctl denials: %v: %s", err, out)
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return resp, fmt.Errorf("wardenctl denials -o json: %v: %s", err, out)
	}
	return resp, nil
}

// compareObserved: a caller without a sidecar that reaches a proxy's PERMISSIVE port
// shows up, by its address, among the port's plaintext callers in
// `wardenctl mtls --observed`, with the warning: the step's request is sent once more
// and the caller's count must grow. It returns 1 when compared.
func compareObserved(ctx context.Context, m *harness.Mesh, sc *scenario.Scenario, st *scenario.Step) (int, error) {
	r := st.Request
	_, from, tgt, err := stepTarget(m, r)
	if err != nil || !tgt.pod.Opts.Sidecar || from.Opts.Sidecar {
		return 0, err
	}
	mode, before, warned, err := observedPlaintext(ctx, m, tgt, from.IP())
	if err != nil || mode != "PERMISSIVE" {
		return 0, err
	}
	if _, err := sendAgain(ctx, m, from, r, tgt.connect, sc.Dir); err != nil {
		return 0, err
	}
	var n int
	err = poll.Until(ctx, 15*time.Second, func() (bool, error) {
		var warned2 bool
		var err error
		if _, n, warned2, err = observedPlaintext(ctx, m, tgt, from.IP()); err != nil || n <= before {
			return false, err
		}
		if !warned2 {
			return false, fmt.Errorf("plaintext caller %s of PERMISSIVE %s:%d seen without a warning", from.IP(), tgt.pod.ID(), tgt.port)
		}
		return true, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return 0, fmt.Errorf("plaintext caller %s of %s:%d: mtls --observed still counts %d requests (warned %v) after one more", from.IP(), tgt.pod.ID(), tgt.port, n, warned)
	}
	if err != nil {
		return 0, err
	}
	return 1, nil
}

// observedPlaintext reads `wardenctl mtls --observed`: the port's intended mode, the
// plaintext requests seen from ip, and whether a warning names the port and ip.
func observedPlaintext(ctx context.Context, m *harness.Mesh, tgt replayTargetPod, ip string) (mode string, n int, warned bool, err error) {
	var rows struct {
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
		return "", 0, false, fmt.Errorf("wardenctl mtls --observed: %v: %s", err, out)
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		return "", 0, false, fmt.Errorf("wardenctl mtls --observed -o json: %v: %s", err, out)
	}
	for _, w := range rows.Workloads {
		if w.Name+"."+w.Namespace == tgt.pod.ID() {
			for _, p := range w.Ports {
				if p.Port == tgt.port {
					mode = p.Mode
				}
			}
		}
	}
	for _, p := range rows.Observed {
		if p.Proxy == tgt.pod.ID() && p.Port == tgt.port {
			n = p.Plaintext[ip]
		}
	}
	for _, w := range rows.Warnings {
		if strings.Contains(w, tgt.pod.ID()+" port ") && strings.Contains(w, ip) {
			warned = true
		}
	}
	return mode, n, warned, nil
}

// nextStep is the step after st in sc.
func nextStep(sc *scenario.Scenario, st *scenario.Step) *scenario.Step {
	for i := range sc.Steps {
		if &sc.Steps[i] == st && i+1 < len(sc.Steps) {
			return &sc.Steps[i+1]
		}
	}
	return nil
}

type flipKey struct {
	caller, workload string
	port             uint32
}

// previewRun is one `check --observed` before an apply step and what the request
// steps after it saw, until the next preview or the scenario's end.
type previewRun struct {
	sc    *scenario.Scenario
	flips map[flipKey]string // -> the decision with the change
	seen  map[flipKey]string // pairs of later request steps -> their decision
	where string
}

func startPreview(ctx context.Context, m *harness.Mesh, sc *scenario.Scenario, apply *scenario.Step) (*previewRun, error) {
	dir, err := os.MkdirTemp("", "preview")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var all []byte
	for _, ref := range apply.Apply {
		_, data, err := ref.Read(sc.Dir)
		if err != nil {
			return nil, err
		}
		all = append(append(all, data...), []byte("\n---\n")...)
	}
	file := dir + "/change.yaml"
	if err := os.WriteFile(file, all, 0o600); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, m.Bin.Wardenctl, "check", "--observed", "-f", file, "--config-dir", m.ConfigDir,
		"--server", m.DebugAddr, "-o", "json").Output()
	if err != nil {
		return nil, fmt.Errorf("wardenctl check --observed: %v: %s", err, out)
	}
	var res struct {
		Flips []struct {
			Caller, Workload, To string
			Port                 uint32
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("check --observed -o json: %v: %s", err, out)
	}
	p := &previewRun{sc: sc, flips: map[flipKey]string{}, seen: map[flipKey]string{}, where: sc.Name}
	for _, f := range res.Flips {
		p.flips[flipKey{f.Caller, f.Workload, f.Port}] = f.To
	}
	return p, nil
}

// observe records a request step's pair as the preview names callers.
func (p *previewRun) observe(m *harness.Mesh, st *scenario.Step) {
	_, from, tgt, err := stepTarget(m, st.Request)
	if err != nil || !tgt.pod.Opts.Sidecar || from.Opts.Sidecar || st.Expect.ConnectionError {
		return // the window has only plaintext callers' allowed requests
	}
	d := "ALLOW"
	if st.Expect.Status == 403 {
		d = "DENY"
	}
	k := flipKey{"plaintext " + from.IP(), tgt.pod.ID(), tgt.port}
	if _, ok := p.seen[k]; !ok {
		p.seen[k] = d
	}
}

// finish compares: every flip the preview named is what the first later step of that
// pair got, and every such pair that got DENY was named. It returns the flips confirmed.
func (p *previewRun) finish(t *testing.T) int {
	t.Helper()
	n := 0
	for k, to := range p.flips {
		got, ok := p.seen[k]
		if !ok {
			continue // no later step sent that pair
		}
		if got != to {
			t.Errorf("%s: the preview said %s -> %s:%d becomes %s; the next request got %s", p.where, k.caller, k.workload, k.port, to, got)
			continue
		}
		n++
	}
	for k, got := range p.seen {
		if _, ok := p.flips[k]; !ok && got == "DENY" {
			t.Errorf("%s: %s -> %s:%d was denied after the apply, but the preview named no flip for it (flips %v)", p.where, k.caller, k.workload, k.port, p.flips)
		}
	}
	return n
}
