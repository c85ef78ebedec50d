package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/e2e/xdsload"
)

// bench is one control plane's run over the mesh.
type bench struct {
	cp        controlPlane
	env       *kubeenv.Env
	size      Size
	pods      []*pod
	rate      int
	delta     bool
	out, work string
	log       func(string, time.Time)
	fleet     *xdsload.Fleet
}

// result holds one control plane's figures; a zero duration prints as "-".
type result struct {
	name               string
	cold               time.Duration
	scoped             time.Duration
	scopedOthers       int
	meshP50, meshP99   time.Duration
	meshPushed         int
	rotated            bool // false: not measured (the server does not push certificates)
	rotAll, rotLag99   time.Duration
	rotOthers          int
	rotEarly           int
	storm              time.Duration
	rssCold, rssEnd    float64
	cpuScoped, cpuMesh float64
	streamErrors       int64
	errorKinds         map[string]int
}

func (b *bench) run(ctx context.Context) (*result, error) {
	r := &result{name: b.cp.name()}
	t0 := time.Now()
	if err := b.cp.start(ctx, b.env, b.work); err != nil {
		return nil, err
	}
	b.log(b.cp.name()+" ready", t0)
	cfg := b.cp.fleet()
	cfg.Delta = b.delta
	b.fleet = xdsload.New(cfg)
	proxies := make([]*xdsload.Proxy, len(b.pods))
	for i, p := range b.pods {
		var err error
		if proxies[i], err = b.cp.proxy(p); err != nil {
			return nil, err
		}
	}

	// Cold sync: streams opened at rate per second.
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(proxies))
	tick := time.NewTicker(time.Second / time.Duration(b.rate))
	for _, p := range proxies {
		<-tick.C
		wg.Go(func() {
			if err := b.fleet.Add(ctx, p); err != nil {
				errs <- err
			}
		})
	}
	tick.Stop()
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	synced := func(mark int64) func(*xdsload.Proxy) bool {
		return func(p *xdsload.Proxy) bool { return p.GotSince("CDS", mark) && p.GotSince("LDS", mark) }
	}
	if err := b.fleet.WaitAll(ctx, synced(0)); err != nil {
		return nil, fmt.Errorf("cold sync: %w", err)
	}
	r.cold = time.Since(start)
	b.fleet.Settle(ctx, 0, time.Second)
	r.rssCold, _ = procStats(b.cp.pid())
	b.log(b.cp.name()+" cold sync", start)

	// Scoped change: namespace policy 0 selects pods[0] only.
	target := proxies[0]
	mark := b.fleet.Mark()
	_, cpu0 := procStats(b.cp.pid())
	t0 = time.Now()
	if err := b.env.Apply(ctx, []byte(b.size.nsPolicy(0, 1))); err != nil {
		return nil, err
	}
	if err := b.fleet.WaitOne(ctx, target, "LDS", mark); err != nil {
		return nil, fmt.Errorf("scoped change: %w", err)
	}
	r.scoped = time.Since(t0)
	b.fleet.Settle(ctx, mark, time.Second)
	r.scopedOthers = b.fleet.PushedSince(mark) - 1
	_, cpu1 := procStats(b.cp.pid())
	r.cpuScoped = cpu1 - cpu0

	// Mesh-wide change: the root namespace's DENY policy applies to every proxy.
	mark = b.fleet.Mark()
	t0 = time.Now()
	if err := b.env.Apply(ctx, []byte(meshDeny(1))); err != nil {
		return nil, err
	}
	if err := b.fleet.WaitAll(ctx, func(p *xdsload.Proxy) bool { return p.GotSince("LDS", mark) }); err != nil {
		return nil, fmt.Errorf("mesh-wide change: %w", err)
	}
	b.fleet.Settle(ctx, mark, time.Second)
	lat := b.fleet.Latencies("LDS", mark, t0)
	r.meshP50, r.meshP99 = xdsload.Pct(lat, 50), xdsload.Pct(lat, 99)
	r.meshPushed = b.fleet.PushedSince(mark)
	_, cpu2 := procStats(b.cp.pid())
	r.cpuMesh = cpu2 - cpu1
	b.log(b.cp.name()+" changes", t0)

	if b.cp.rotates() {
		if err := b.rotation(ctx, r, proxies); err != nil {
			return nil, err
		}
	}

	// Reconnect storm: every stream dropped at once and reopened at once.
	b.fleet.Drop()
	mark = b.fleet.Mark()
	t0 = time.Now()
	for _, p := range proxies {
		wg.Go(func() {
			if err := b.fleet.Reopen(ctx, p); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	if err := b.fleet.WaitAll(ctx, synced(mark)); err != nil {
		return nil, fmt.Errorf("reconnect storm: %w", err)
	}
	r.storm = time.Since(t0)
	b.fleet.Settle(ctx, mark, time.Second)
	b.log(b.cp.name()+" reconnect storm", t0)
	r.rssEnd, _ = procStats(b.cp.pid())
	r.streamErrors, r.errorKinds = b.fleet.StreamErrors(), b.fleet.StreamErrorKinds()
	if err := b.cp.heap(filepath.Join(b.out, b.cp.name()+"-heap.prof")); err != nil {
		fmt.Fprintf(os.Stderr, "%s heap profile: %v\n", b.cp.name(), err)
	}
	b.fleet.Drop()
	return r, nil
}

// rotation waits until every proxy was pushed a certificate newer than its first one
// (wardend rotates at half life) and counts the other pushes meanwhile.
func (b *bench) rotation(ctx context.Context, r *result, proxies []*xdsload.Proxy) error {
	r.rotated = true
	mark := b.fleet.Mark()
	first := map[*xdsload.Proxy]time.Time{}
	var due time.Time
	for _, p := range proxies {
		ev := p.Since("SDS", 0)
		for _, e := range ev {
			if !e.RotateAt.IsZero() {
				first[p] = e.RotateAt
				if due.IsZero() || e.RotateAt.Before(due) {
					due = e.RotateAt
				}
				break
			}
		}
		if first[p].IsZero() {
			return fmt.Errorf("rotation: %s.%s was never pushed a certificate over SDS", p.App, p.NS)
		}
	}
	rotatedEv := func(p *xdsload.Proxy) (xdsload.Event, bool) {
		for _, e := range p.Since("SDS", 0) {
			if e.RotateAt.After(first[p]) {
				return e, true
			}
		}
		return xdsload.Event{}, false
	}
	for _, p := range proxies {
		if e, ok := rotatedEv(p); ok && e.Seq <= mark {
			r.rotEarly++
		}
	}
	fmt.Fprintf(os.Stderr, "== waiting for certificate rotation, due from %s (in %s)\n", due.Format(time.TimeOnly), time.Until(due).Round(time.Second))
	if err := b.fleet.WaitAll(ctx, func(p *xdsload.Proxy) bool { _, ok := rotatedEv(p); return ok }); err != nil {
		return fmt.Errorf("rotation: %w", err)
	}
	b.fleet.Settle(ctx, mark, time.Second)
	var lags []time.Duration
	var last time.Time
	for _, p := range proxies {
		e, _ := rotatedEv(p)
		lags = append(lags, max(0, e.At.Sub(first[p])))
		if e.At.After(last) {
			last = e.At
		}
	}
	r.rotAll = max(0, last.Sub(due))
	r.rotLag99 = xdsload.Pct(lags, 99)
	r.rotOthers = b.fleet.PushedSince(mark, "CDS", "LDS", "RDS", "EDS")
	return nil
}

func numCPU() int { return runtime.NumCPU() }

func printTable(w io.Writer, rs []*result) {
	dur := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		if d < time.Second {
			return d.Round(time.Millisecond).String()
		}
		return d.Round(10 * time.Millisecond).String()
	}
	type row struct {
		figure string
		cell   func(*result) (string, float64, bool) // text, value for the ratio, measured
	}
	d := func(f func(*result) time.Duration) func(*result) (string, float64, bool) {
		return func(r *result) (string, float64, bool) { v := f(r); return dur(v), float64(v), v != 0 }
	}
	n := func(f func(*result) float64, unit string, ok func(*result) bool) func(*result) (string, float64, bool) {
		return func(r *result) (string, float64, bool) {
			if ok != nil && !ok(r) {
				return "n/a", 0, false
			}
			v := f(r)
			if unit == "" {
				return fmt.Sprintf("%.0f", v), v, true
			}
			return fmt.Sprintf("%.2f %s", v, unit), v, true
		}
	}
	rot := func(r *result) bool { return r.rotated }
	rotD := func(f func(*result) time.Duration) func(*result) (string, float64, bool) {
		return func(r *result) (string, float64, bool) {
			if !r.rotated {
				return "n/a (agent)", 0, false
			}
			return d(f)(r)
		}
	}
	rows := []row{
		{"cold sync: every proxy has CDS+LDS", d(func(r *result) time.Duration { return r.cold })},
		{"scoped change: affected proxy has new LDS (ACKed)", d(func(r *result) time.Duration { return r.scoped })},
		{"scoped change: unaffected proxies pushed", n(func(r *result) float64 { return float64(r.scopedOthers) }, "", nil)},
		{"scoped change: CPU seconds", n(func(r *result) float64 { return r.cpuScoped }, "s", nil)},
		{"mesh-wide change: new LDS p50", d(func(r *result) time.Duration { return r.meshP50 })},
		{"mesh-wide change: new LDS p99", d(func(r *result) time.Duration { return r.meshP99 })},
		{"mesh-wide change: CPU seconds", n(func(r *result) float64 { return r.cpuMesh }, "s", nil)},
		{"cert rotation: last proxy rotated, after first due", rotD(func(r *result) time.Duration { return r.rotAll })},
		{"cert rotation: per-proxy lag past due, p99", rotD(func(r *result) time.Duration { return r.rotLag99 })},
		{"cert rotation: proxies pushed other than SDS", n(func(r *result) float64 { return float64(r.rotOthers) }, "", rot)},
		{"reconnect storm: all streams re-synced", d(func(r *result) time.Duration { return r.storm })},
		{"resident memory after cold sync", n(func(r *result) float64 { return r.rssCold }, "MB", nil)},
		{"resident memory at the end", n(func(r *result) float64 { return r.rssEnd }, "MB", nil)},
		{"streams failed and retried (backoff as Envoy)", n(func(r *result) float64 { return float64(r.streamErrors) }, "", nil)},
	}
	head := []string{"figure"}
	for _, r := range rs {
		head = append(head, r.name)
	}
	if len(rs) == 2 {
		head = append(head, rs[1].name+"/"+rs[0].name)
	}
	lines := [][]string{head}
	for _, rw := range rows {
		line := []string{rw.figure}
		var vals []float64
		var oks []bool
		for _, r := range rs {
			s, v, ok := rw.cell(r)
			line = append(line, s)
			vals, oks = append(vals, v), append(oks, ok)
		}
		if len(rs) == 2 {
			ratio := "-"
			if oks[0] && oks[1] && vals[0] > 0 {
				ratio = fmt.Sprintf("%.1fx", vals[1]/vals[0])
			}
			line = append(line, ratio)
		}
		lines = append(lines, line)
	}
	widths := make([]int, len(head))
	for _, l := range lines {
		for i, c := range l {
			widths[i] = max(widths[i], len(c))
		}
	}
	for k, l := range lines {
		var sb strings.Builder
		for i, c := range l {
			fmt.Fprintf(&sb, "%-*s  ", widths[i], c)
		}
		fmt.Fprintln(w, strings.TrimRight(sb.String(), " "))
		if k == 0 {
			fmt.Fprintln(w, strings.Repeat("-", sb.Len()-2))
		}
	}
	for _, r := range rs {
		for _, msg := range slices.Sorted(maps.Keys(r.errorKinds)) {
			fmt.Fprintf(w, "%s streams failed %d times with: %s\n", r.name, r.errorKinds[msg], msg)
		}
		if r.rotEarly > 0 {
			fmt.Fprintf(w, "note: %d %s proxies rotated before the rotation phase (during the changes): raise -cert-ttl\n", r.rotEarly, r.name)
		}
	}
}
