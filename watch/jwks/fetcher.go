// Package jwks fetches the key sets named by RequestAuthentication jwksUri values, so
// that translation can inline them in Envoy's jwt_authn filter (local_jwks) and stay
// pure. Each Input that passes through a Fetcher comes out with Input.JWKS filled.
// Good key sets are refreshed periodically; failed ones are retried sooner. A refresh
// that changes anything sends the current Input again with the new results.
//
// Failures never block traffic that does not need the key set: translation gives an
// issuer whose key set is missing a key set that matches no token, so only that
// issuer's tokens are rejected (401), and reports the error as a diagnostic.
package jwks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenmesh/warden/watch"
)

// Defaults for Options fields left zero.
const (
	DefaultRefresh = 20 * time.Minute // Istio's default JWKS refresh interval
	DefaultRetry   = 30 * time.Second
	DefaultTimeout = 5 * time.Second // JWTRule timeout default
	maxBody        = 1 << 20
)

// Options configure a Fetcher.
type Options struct {
	Log *slog.Logger
	// Refresh is how often a good key set is fetched again; Retry how soon a failed
	// one is.
	Refresh, Retry time.Duration
	// Transport makes the HTTP requests; nil uses one whose dialer reaches mesh
	// Services at a ready endpoint, as cluster DNS plus kube-proxy would.
	Transport http.RoundTripper
}

// Fetcher keeps the key sets of the current Input's jwksUri values.
type Fetcher struct {
	log     *slog.Logger
	refresh time.Duration
	retry   time.Duration
	client  *http.Client
	current atomic.Pointer[watch.Input] // the Input whose Services the dialer resolves

	cache map[string]*entry // owned by Run
}

type entry struct {
	res      watch.JWKSResult
	timeout  time.Duration
	due      time.Time
	failures int // consecutive failed fetches, for the retry backoff
}

// firstRetry is how soon a first failure is retried; the delay doubles per failure up
// to the Retry option, so a key server that is just starting is picked up quickly and
// one that is down is not hammered.
const firstRetry = time.Second

func (f *Fetcher) retryDelay(failures int) time.Duration {
	d := firstRetry
	for i := 1; i < failures && d < f.retry; i++ {
		d *= 2
	}
	return min(d, f.retry)
}

// New returns a Fetcher.
func New(o Options) *Fetcher {
	f := &Fetcher{log: o.Log, refresh: o.Refresh, retry: o.Retry, cache: map[string]*entry{}}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.refresh <= 0 {
		f.refresh = DefaultRefresh
	}
	if f.retry <= 0 {
		f.retry = DefaultRetry
	}
	tr := o.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		t.DialContext = f.dial
		tr = t
	}
	f.client = &http.Client{Transport: tr}
	return f
}

// Run reads Inputs from in and sends each to out with its key sets, until ctx ends
// or in is closed. Fetches of new URIs finish (each within its timeout) before the
// Input is sent, so a proxy never gets a configuration that lacks a key set merely
// because it was still being fetched.
func (f *Fetcher) Run(ctx context.Context, in <-chan *watch.Input, out chan<- *watch.Input) error {
	var cur *watch.Input
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var send *watch.Input
		select {
		case <-ctx.Done():
			return nil
		case next, ok := <-in:
			if !ok {
				return nil
			}
			cur = next
			f.current.Store(cur)
			f.sync(ctx, cur.JWKSURIs())
			send = cur.WithJWKS(f.results())
		case <-timer.C:
			if cur != nil && f.refreshDue(ctx, time.Now()) {
				send = cur.WithJWKS(f.results())
			}
		}
		resetTimer(timer, f.nextDue())
		if send == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case out <- send:
		}
	}
}

// sync fetches the URIs not in the cache and forgets those no longer used.
func (f *Fetcher) sync(ctx context.Context, uris map[string]time.Duration) {
	for uri := range f.cache {
		if _, ok := uris[uri]; !ok {
			delete(f.cache, uri)
		}
	}
	var todo []string
	for uri, timeout := range uris {
		if e, ok := f.cache[uri]; ok {
			e.timeout = timeout
			continue
		}
		f.cache[uri] = &entry{timeout: timeout}
		todo = append(todo, uri)
	}
	f.fetchAll(ctx, todo, time.Now())
}

// refreshDue fetches every entry that is due and reports whether a result changed.
func (f *Fetcher) refreshDue(ctx context.Context, now time.Time) bool {
	var todo []string
	before := map[string]watch.JWKSResult{}
	for uri, e := range f.cache {
		if !e.due.After(now) {
			todo = append(todo, uri)
			before[uri] = e.res
		}
	}
	f.fetchAll(ctx, todo, now)
	for _, uri := range todo {
		a, b := before[uri], f.cache[uri].res
		if a.JWKS != b.JWKS || a.Error != b.Error {
			return true
		}
	}
	return false
}

// fetchAll fetches uris concurrently and records the results.
func (f *Fetcher) fetchAll(ctx context.Context, uris []string, now time.Time) {
	type result struct {
		uri  string
		body string
		err  error
	}
	results := make([]result, len(uris))
	var wg sync.WaitGroup
	for i, uri := range uris {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, err := f.fetch(ctx, uri, f.cache[uri].timeout)
			results[i] = result{uri, body, err}
		}()
	}
	wg.Wait()
	for _, r := range results {
		f.record(f.cache[r.uri], r.uri, r.body, r.err, now)
	}
}

func (f *Fetcher) record(e *entry, uri, body string, err error, now time.Time) {
	if err == nil {
		var skipped int
		_, skipped, err = Usable(body)
		if err == nil && skipped > 0 {
			f.log.Warn("JWKS has unusable keys; they are ignored", "uri", uri, "skipped", skipped)
		}
	}
	if err != nil {
		e.failures++
		e.due = now.Add(f.retryDelay(e.failures))
		if e.res.Error == "" {
			f.log.Error("JWKS fetch failed; tokens of its issuers are rejected until it succeeds",
				"uri", uri, "error", err, "lastGood", e.res.Fetched)
		}
		e.res.Error = err.Error()
		return
	}
	e.failures = 0
	if e.res.Error != "" {
		f.log.Info("JWKS fetch recovered", "uri", uri)
	}
	e.due = now.Add(f.refresh)
	e.res = watch.JWKSResult{JWKS: body, Fetched: now}
}

func (f *Fetcher) fetch(ctx context.Context, uri string, timeout time.Duration) (string, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return "", fmt.Errorf("fetch JWKS %s: %w", uri, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return "", fmt.Errorf("fetch JWKS %s: read body: %w", uri, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch JWKS %s: status %d", uri, resp.StatusCode)
	}
	if len(body) > maxBody {
		return "", fmt.Errorf("fetch JWKS %s: larger than %d bytes", uri, maxBody)
	}
	return string(body), nil
}

// results is a copy of the cached results, safe to put into an Input.
func (f *Fetcher) results() map[string]watch.JWKSResult {
	out := make(map[string]watch.JWKSResult, len(f.cache))
	for uri, e := range f.cache {
		out[uri] = e.res
	}
	return out
}

func (f *Fetcher) nextDue() time.Time {
	var next time.Time
	for _, e := range f.cache {
		if next.IsZero() || e.due.Before(next) {
			next = e.due
		}
	}
	return next
}

func resetTimer(t *time.Timer, at time.Time) {
	d := time.Hour
	if !at.IsZero() {
		d = max(time.Until(at), 0)
	}
	t.Reset(d)
}

// dial reaches a mesh Service's host name (name.ns, name.ns.svc or the FQDN) at one
// of its ready endpoints, and anything else as the system resolver says.
func (f *Fetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if in := f.current.Load(); in != nil {
		if ep, ok := serviceEndpoint(in, addr); ok {
			return d.DialContext(ctx, network, ep)
		}
	}
	return d.DialContext(ctx, network, addr)
}

// serviceEndpoint maps "host:port" of a mesh Service to "ip:targetPort" of its first
// ready endpoint.
func serviceEndpoint(in *watch.Input, addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false
	}
	svc := serviceByName(in, host)
	if svc == nil {
		return "", false
	}
	for _, sp := range svc.Ports {
		if fmt.Sprint(sp.Port) != port {
			continue
		}
		if eps := in.Endpoints(svc, sp); len(eps) > 0 {
			return net.JoinHostPort(eps[0].IP, fmt.Sprint(eps[0].Port)), true
		}
	}
	return "", false
}

func serviceByName(in *watch.Input, host string) *watch.Service {
	if svc := in.ServiceByHost(host); svc != nil {
		return svc
	}
	suffix := in.DomainSuffix
	if suffix == "" {
		suffix = watch.DefaultDomainSuffix
	}
	for _, cand := range []string{host + ".svc." + suffix, host + "." + suffix} {
		if svc := in.ServiceByHost(cand); svc != nil {
			return svc
		}
	}
	return nil
}
