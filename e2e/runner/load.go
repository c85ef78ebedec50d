package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/scenario"
)

// loadResult is one request of an underLoad stream.
type loadResult struct {
	ok     bool // the wanted status
	serial string
	got    string
}

// loadArgs are the `request` command line of an underLoad request.
func (w *world) loadArgs(r *scenario.Request) (*harness.Pod, []string, error) {
	from, err := w.caller(r.From)
	if err != nil {
		return nil, nil, err
	}
	args := []string{w.mesh.Bin.App, "request", "-url", r.URL, "-method", r.Method, "-timeout", "5s"}
	if r.To != "" {
		ref, port, err := scenario.ParsePodPort(r.To)
		if err != nil {
			return nil, nil, err
		}
		target := w.mesh.Pod(ref.Name + "." + ref.Namespace)
		if target == nil {
			return nil, nil, fmt.Errorf("underLoad.request.to: no pod %s", ref)
		}
		args = append(args, "-connect", target.IP()+":"+strconv.Itoa(port))
	}
	tlsArgs, err := w.tlsArgs(r.TLS)
	if err != nil {
		return nil, nil, err
	}
	args = append(args, tlsArgs...)
	hk := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		hk = append(hk, k)
	}
	sort.Strings(hk)
	for _, k := range hk {
		args = append(args, "-header", k+"="+r.Headers[k])
	}
	return from, args, nil
}

// envoyUptime is the admin uptime_current_epoch of p's Envoy, in seconds.
func envoyUptime(ctx context.Context, p *harness.Pod) (int64, error) {
	out, err := p.Exec(ctx, "curl", "-sS", "--fail", "--max-time", "5", "http://127.0.0.1:15000/server_info")
	if err != nil {
		return 0, fmt.Errorf("%s server_info: %v: %s", p.ID(), err, out)
	}
	var info struct {
		Uptime string `json:"uptime_current_epoch"` // "12s"
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("%s server_info: %v", p.ID(), err)
	}
	d, err := time.ParseDuration(info.Uptime)
	if err != nil {
		return 0, fmt.Errorf("%s server_info uptime %q: %v", p.ID(), info.Uptime, err)
	}
	return int64(d / time.Second), nil
}

// runUnderLoad runs an apply or delete step (change) while st.UnderLoad's request
// is sent again and again, and judges the stream (see scenario.Load).
func (w *world) runUnderLoad(ctx context.Context, st *scenario.Step, change func() (outcome, error)) (outcome, error) {
	l := st.UnderLoad
	req := l.Request
	if req.Method == "" {
		req.Method = "GET"
	}
	from, args, err := w.loadArgs(&req)
	if err != nil {
		return outcome{}, err
	}
	ref, err := scenario.ParsePodRef(l.Pod)
	if err != nil {
		return outcome{}, err
	}
	proxy := w.mesh.Pod(ref.Name + "." + ref.Namespace)
	if proxy == nil || proxy.Envoy == nil {
		return outcome{}, fmt.Errorf("underLoad.pod: no pod %s with Envoy", l.Pod)
	}
	pid := proxy.Envoy.Pid()
	upBefore, err := envoyUptime(ctx, proxy)
	if err != nil {
		return outcome{}, err
	}
	status := l.Status
	if status == 0 {
		status = 200
	}
	want := scenario.ServerCertificate{Serial: l.UntilServerCertificate.Serial, DNSSAN: l.UntilServerCertificate.DNSSAN}

	var mu sync.Mutex
	var results []loadResult
	newSeen := 0 // requests that presented the wanted certificate since the change
	changed := false
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			out, err := from.Exec(ctx, args...)
			if err != nil {
				done <- fmt.Errorf("underLoad request from %s: %v: %s", req.From, err, out)
				return
			}
			var res harness.Result
			if err := json.Unmarshal(out, &res); err != nil {
				done <- fmt.Errorf("underLoad request: bad client output %q", out)
				return
			}
			ok := !res.ConnectionError && res.Error == "" && res.Status == status
			isNew, _, desc := checkServerCert(&want, out)
			r := loadResult{ok: ok, got: res.String()}
			if ok {
				r.got = fmt.Sprintf("status %d, %s", res.Status, desc)
			}
			mu.Lock()
			results = append(results, r)
			if changed && ok && isNew {
				newSeen++
			}
			mu.Unlock()
		}
	}()
	// Some requests before the change, so the stream spans it.
	waitFor := func(cond func() bool, d time.Duration) bool {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			mu.Lock()
			c := cond()
			mu.Unlock()
			if c {
				return true
			}
			select {
			case err := <-done:
				done <- err
				return false
			case <-time.After(20 * time.Millisecond):
			}
		}
		return false
	}
	waitFor(func() bool { return len(results) >= 3 }, 30*time.Second)
	mu.Lock()
	before := len(results)
	mu.Unlock()
	o, changeErr := change()
	mu.Lock()
	changed = true
	mu.Unlock()
	// Until the new certificate was presented three times in a row of the stream.
	converged := changeErr == nil && waitFor(func() bool { return newSeen >= 3 }, 30*time.Second)
	close(stop)
	if err := <-done; err != nil {
		return outcome{}, err
	}
	if changeErr != nil {
		return outcome{}, changeErr
	}
	upAfter, err := envoyUptime(ctx, proxy)
	if err != nil {
		return outcome{}, err
	}
	pidAfter := -1
	if p := w.mesh.Pod(proxy.ID()); p != nil && p.Envoy != nil {
		pidAfter = p.Envoy.Pid()
	}
	alive := syscall.Kill(pid, 0) == nil

	var failed []string
	for i, r := range results {
		if !r.ok {
			failed = append(failed, fmt.Sprintf("#%d %s", i+1, r.got))
		}
	}
	o.proxies = append(o.proxies, from.ID(), proxy.ID())
	o.from, o.to = req.From, req.URL+" (under load)"
	o.want = fmt.Sprintf("every request status %d while the change converges, then %s, Envoy %s not restarted",
		status, certWant(want), proxy.ID())
	var got []string
	got = append(got, fmt.Sprintf("%d requests (%d before the change), %d failed", len(results), before, len(failed)))
	if len(failed) > 0 {
		got = append(got, "failures: "+strings.Join(first(failed, 5), "; "))
	}
	if !converged {
		last := "none"
		if len(results) > 0 {
			last = results[len(results)-1].got
		}
		got = append(got, "the new certificate was not served within 30s (last: "+last+")")
	}
	if pidAfter != pid || !alive {
		got = append(got, fmt.Sprintf("Envoy pid %d before, %d after (alive %v)", pid, pidAfter, alive))
	}
	if upAfter < upBefore {
		got = append(got, fmt.Sprintf("Envoy uptime went from %ds to %ds: it restarted", upBefore, upAfter))
	}
	o.pass = len(failed) == 0 && converged && pidAfter == pid && alive && upAfter >= upBefore && before > 0
	o.got = strings.Join(got, ", ")
	return o, nil
}

func certWant(c scenario.ServerCertificate) string {
	_, w, _ := checkServerCert(&c, nil)
	return w
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}
