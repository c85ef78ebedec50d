// Package runner executes end-to-end scenarios (format: shared/docs/scenarios.md) against
// real processes: wardend, stock Envoy sidecars and the test app in network namespaces.
package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/scenario"
)

// Options configure a run.
type Options struct {
	Out   io.Writer
	Log   *slog.Logger
	Table bool // print a table a person reads at a glance (make demo)
	// StepHook, when set, sees every request step's outcome (e.g. to replay it elsewhere).
	StepHook func(sc *scenario.Scenario, st *scenario.Step, m *harness.Mesh, passed bool)
	// ExtraFailed counts failures found before running (files that did not load).
	ExtraFailed int
	// Mode is how the objects reach wardend: ModeDir (default, a folder) or ModeKube
	// (a real kube-apiserver, started per scenario).
	Mode string
	// Inject runs every sidecar pod from its injected Pod spec (inject.Pod) with the
	// emulator's kubelet (e2e/harness/kubelet.go) instead of starting its app and
	// Envoy directly; in kube mode the Pod object written is the injected one.
	Inject bool
	// Keep leaves the mesh of the (single) scenario up after its last step, prints the
	// commands to try against it, and returns only when ctx ends (make up / make down).
	Keep bool
}

// Summary counts step results.
type Summary struct{ Passed, Failed int }

// Run runs every scenario in order and prints PASS/FAIL lines and the closing count.
func Run(ctx context.Context, scs []*scenario.Scenario, o Options) Summary {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	sum := Summary{Failed: o.ExtraFailed}
	for _, sc := range scs {
		if ctx.Err() != nil {
			break
		}
		s := runScenario(ctx, sc, o)
		sum.Passed += s.Passed
		sum.Failed += s.Failed
	}
	fmt.Fprintf(o.Out, "%d passed, %d failed\n", sum.Passed, sum.Failed)
	return sum
}

type tableRow struct{ step, flow, want, got, converge, result string }

func runScenario(ctx context.Context, sc *scenario.Scenario, o Options) (sum Summary) {
	start := time.Now()
	var rows []tableRow
	defer func() {
		if o.Table && len(rows) > 0 {
			tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "STEP\tCALLER -> TARGET\tEXPECTED\tGOT\tCONVERGED IN\tRESULT")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cellText(r.step, 44), cellText(r.flow, 52),
					cellText(r.want, 40), cellText(r.got, 40), r.converge, r.result)
			}
			tw.Flush()
		}
		fmt.Fprintf(o.Out, "--- %s: %d passed, %d failed in %s\n", sc.Name, sum.Passed, sum.Failed, time.Since(start).Round(time.Millisecond))
	}()
	m, err := harness.Start(ctx, harness.Options{Log: o.Log})
	if err != nil {
		fmt.Fprintf(o.Out, "FAIL %s/setup: %v\n", sc.Name, err)
		sum.Failed++
		return sum
	}
	bstart := time.Now()
	b, err := newBackend(ctx, o.Mode, m, o)
	if err != nil {
		fmt.Fprintf(o.Out, "FAIL %s/setup: %v\n", sc.Name, err)
		sum.Failed++
		if err := m.Close(); err != nil {
			o.Log.Warn("close mesh", "err", err)
		}
		return sum
	}
	if o.Mode == ModeKube {
		fmt.Fprintf(o.Out, "=== %s: kube-apiserver ready, deploy/ applied (%s)\n", sc.Name, time.Since(bstart).Round(time.Millisecond))
	}
	// wardend stops before what it watches.
	defer func() {
		if err := m.Close(); err != nil {
			o.Log.Warn("close mesh", "err", err)
		}
		if err := b.close(); err != nil {
			o.Log.Warn("close backend", "mode", o.Mode, "err", err)
		}
	}()
	w := newWorld(m, sc, b)
	setupFail := func(err error) Summary {
		fmt.Fprintf(o.Out, "FAIL %s/setup: %v\n%s", sc.Name, err, indent(m.Diagnose(ctx)))
		sum.Failed++
		return sum
	}
	// The root namespace always exists, as in a cluster with Warden installed.
	if err := w.apply([]scenario.ManifestRef{{Inline: "apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}\n"}}); err != nil {
		return setupFail(err)
	}
	if err := w.apply(sc.Manifests); err != nil {
		return setupFail(err)
	}
	if w.outside, err = m.CreatePod(ctx, "outside", "client"); err != nil {
		return setupFail(err)
	}
	if err := w.startExternals(ctx); err != nil {
		return setupFail(err)
	}
	// wardend's first view fixes the trust domain it issues certificates for: it must
	// already hold the scenario's MeshConfig.
	if err := b.preload(ctx, w, w.meshConfigKeys()); err != nil {
		return setupFail(err)
	}
	if err := b.startWardend(ctx); err != nil {
		return setupFail(err)
	}
	w.trustDomain = w.build(nil).TrustDomain
	if o.Inject {
		if err := setUpInject(m, b, w); err != nil {
			return setupFail(err)
		}
	}
	took, err := w.reconcile(ctx)
	if err != nil {
		return setupFail(err)
	}
	fmt.Fprintf(o.Out, "=== %s: mesh ready, every proxy SYNCED (%s)\n", sc.Name, took.Round(time.Millisecond))
	rows = append(rows, tableRow{"(setup)", "-", "all proxies SYNCED", "SYNCED", took.Round(time.Millisecond).String(), "ok"})
	for i := range sc.Steps {
		st := &sc.Steps[i]
		res, err := w.runStep(ctx, st)
		if err != nil {
			fmt.Fprintf(o.Out, "FAIL %s/%s: %v\n%s", sc.Name, st.Name, err, indent(w.diagnose(ctx, nil)))
			sum.Failed++
			rows = append(rows, tableRow{st.Name, "-", "-", "error: " + truncate(err.Error(), 60), "-", "FAIL"})
			continue
		}
		row := tableRow{step: st.Name, want: res.want, got: res.got, converge: "-", result: "PASS"}
		if res.from != "" {
			row.flow = res.from + " -> " + res.to
		} else {
			row.flow = string(st.Kind())
		}
		if st.Kind() == scenario.KindApply || st.Kind() == scenario.KindDelete {
			row.converge = res.waited.Round(time.Millisecond).String()
		}
		if res.pass {
			sum.Passed++
			extra := ""
			if st.Kind() == scenario.KindApply || st.Kind() == scenario.KindDelete {
				extra = fmt.Sprintf(" (SYNCED in %s)", res.waited.Round(time.Millisecond))
			}
			fmt.Fprintf(o.Out, "PASS %s/%s%s\n", sc.Name, st.Name, extra)
		} else {
			sum.Failed++
			row.result = "FAIL"
			fmt.Fprintf(o.Out, "FAIL %s/%s: want %s got %s\n%s", sc.Name, st.Name, res.want, res.got, indent(w.diagnose(ctx, res.proxies)))
		}
		if o.StepHook != nil && st.Kind() == scenario.KindRequest {
			o.StepHook(sc, st, m, res.pass)
		}
		rows = append(rows, row)
	}
	if o.Keep && ctx.Err() == nil {
		printKept(o.Out, sc, m)
		<-ctx.Done()
	}
	return sum
}

// keptBanner starts the text printed when a mesh is kept up; make up waits for it.
const keptBanner = "== mesh kept up"

// printKept tells a person what to do with a kept mesh, with its real addresses.
func printKept(out io.Writer, sc *scenario.Scenario, m *harness.Mesh) {
	var pods []*harness.Pod
	for _, p := range m.Pods() {
		if p.Envoy != nil {
			pods = append(pods, p)
		}
	}
	first := "POD.NAMESPACE"
	if len(pods) > 0 {
		first = pods[0].ID()
	}
	fmt.Fprintf(out, "%s: scenario %s, wardend %s, config folder %s\n", keptBanner, sc.Name, m.DebugAddr, m.ConfigDir)
	fmt.Fprintf(out, `Try, from another shell in this folder:
  export WARDEN_DEBUG_ADDR=%[1]s
  bin/wardenctl status                      # every proxy and whether it runs what wardend intends
  bin/wardenctl mtls -A                     # the mTLS mode of every workload port, and which policy set it
  bin/wardenctl describe %[2]s
  bin/wardenctl check %[2]s --from-pod sleep.default --path /
  cp e2e/testdata/demo/allow-nothing.yaml %[3]s/   # apply a policy, then watch it converge:
  bin/wardenctl status --fail-unsynced      # exit 0 once every proxy is SYNCED on it
  rm %[3]s/allow-nothing.yaml
`, m.DebugAddr, first, m.ConfigDir)
	seen := map[string]bool{}
	for _, st := range sc.Steps {
		r := st.Request
		if r == nil || r.URL == "" || seen[r.From] {
			continue
		}
		for _, p := range m.Pods() {
			if p.Opts.Namespace+"/"+p.Opts.Name == r.From {
				seen[r.From] = true
				fmt.Fprintf(out, "  ip netns exec %s %s request -url %s   # a request from %s\n", p.NetNS(), m.Bin.App, r.URL, r.From)
			}
		}
	}
	fmt.Fprintf(out, "Stop with Ctrl-C here, or make down.\n")
}

func (w *world) runStep(ctx context.Context, st *scenario.Step) (outcome, error) {
	switch st.Kind() {
	case scenario.KindRequest:
		return w.runRequest(ctx, st)
	case scenario.KindPeerCertificate:
		return w.runPeerCert(ctx, st)
	case scenario.KindApply:
		if err := w.apply(st.Apply); err != nil {
			return outcome{}, err
		}
	case scenario.KindDelete:
		if err := w.remove(st.Delete); err != nil {
			return outcome{}, err
		}
	default:
		return outcome{}, fmt.Errorf("step has no kind")
	}
	took, err := w.reconcile(ctx)
	if err != nil {
		return outcome{}, err
	}
	if td := w.input.TrustDomain; td != w.trustDomain {
		// wardend keeps the trust domain of its first view until it restarts, as an
		// operator must restart it: do so, and wait for every proxy again.
		if err := w.mesh.RestartWardend(ctx); err != nil {
			return outcome{}, err
		}
		w.trustDomain = td
		again, err := w.reconcile(ctx)
		if err != nil {
			return outcome{}, err
		}
		took += again
	}
	return outcome{pass: true, want: "every proxy SYNCED", got: "SYNCED", waited: took}, nil
}

// diagnose prints what a person needs after a failure: the config dump and log tail
// of the proxies involved, and wardend's log tail.
func (w *world) diagnose(ctx context.Context, proxies []string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, id := range proxies {
		if seen[id] {
			continue
		}
		seen[id] = true
		p := w.mesh.Pod(id)
		if p == nil || p.Envoy == nil {
			continue
		}
		dump, err := w.mesh.EnvoyConfigDump(ctx, p)
		if err != nil {
			dump = "config_dump unavailable: " + err.Error()
		}
		fmt.Fprintf(&b, "--- envoy %s config_dump ---\n%s\n--- envoy %s log (tail) ---\n%s\n",
			id, truncate(dump, 12000), id, p.Envoy.LogTail(20))
	}
	fmt.Fprintf(&b, "--- wardend log (tail) ---\n%s\n", w.mesh.WardendLogTail(30))
	return b.String()
}

// cellText keeps a table cell short enough to read at a glance; the PASS/FAIL lines
// above the table carry the whole text.
func cellText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n") + "\n"
}
