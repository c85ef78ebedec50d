package xds

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// countingReviews is a fake TokenReviewInterface: tokens starting with "good" are
// authenticated as a pod-bound service account, "fail" tokens make the call itself
// fail, every other token is refused. It counts calls per token; gate, when set,
// is called inside each call (to block it or to meet other calls).
type countingReviews struct {
	mu    sync.Mutex
	calls map[string]int
	auds  [][]string
	gate  func(token string)
}

func (f *countingReviews) Create(_ context.Context, tr *authnv1.TokenReview, _ metav1.CreateOptions) (*authnv1.TokenReview, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[tr.Spec.Token]++
	f.auds = append(f.auds, tr.Spec.Audiences)
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		gate(tr.Spec.Token)
	}
	out := tr.DeepCopy()
	switch {
	case strings.HasPrefix(tr.Spec.Token, "fail"):
		return nil, errors.New("apiserver unavailable")
	case strings.HasPrefix(tr.Spec.Token, "good"):
		out.Status = authnv1.TokenReviewStatus{Authenticated: true, Audiences: tr.Spec.Audiences, User: authnv1.UserInfo{
			Username: "system:serviceaccount:demo:web", Extra: map[string]authnv1.ExtraValue{PodNameExtra: {"web-0"}}}}
	default:
		out.Status = authnv1.TokenReviewStatus{Error: "invalid bearer token"}
	}
	return out, nil
}

func (f *countingReviews) count(token string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[token]
}

func (f *countingReviews) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// releaser returns a channel the fake's calls block on and the function that
// releases them (also run at cleanup, so a failing test leaves nothing blocked).
func releaser(t *testing.T) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(unblock)
	return ch, unblock
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// jwtWithExp is an unsigned JWT-shaped token whose payload carries exp (none when zero).
func jwtWithExp(prefix string, exp time.Time) string {
	payload := `{"sub":"x"}`
	if !exp.IsZero() {
		payload = fmt.Sprintf(`{"sub":"x","exp":%d}`, exp.Unix())
	}
	enc := base64.RawURLEncoding.EncodeToString
	return prefix + "-" + enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

func review(t *testing.T, c *TokenReviewCache, token string, auds ...string) *authnv1.TokenReview {
	t.Helper()
	if len(auds) == 0 {
		auds = []string{"warden"}
	}
	res, err := c.Create(context.Background(), &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: auds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("review: %v", err)
	}
	return res
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok && v == lp.GetValue() {
			n++
		}
	}
	return n == len(labels)
}

func newTestCache(t *testing.T, f *countingReviews, clk *testClock, opts ...TokenReviewCacheOption) (*TokenReviewCache, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts = append([]TokenReviewCacheOption{WithTokenReviewClock(clk.Now), WithTokenReviewMetrics(reg)}, opts...)
	c, err := NewTokenReviewCache(f, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func TestTokenReviewCacheKeepsAuthenticatedUntilExp(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	f := &countingReviews{}
	c, reg := newTestCache(t, f, clk, WithTokenReviewTTL(10*time.Minute))
	tok := jwtWithExp("good", clk.Now().Add(time.Minute))

	res := review(t, c, tok)
	if !res.Status.Authenticated || res.Spec.Token != tok {
		t.Fatalf("answer = %+v, want authenticated with the caller's spec", res)
	}
	clk.Add(59 * time.Second)
	if !review(t, c, tok).Status.Authenticated || f.count(tok) != 1 {
		t.Fatalf("before exp: %d TokenReviews, want 1 (cached)", f.count(tok))
	}
	clk.Add(2 * time.Second) // past exp, well within the TTL
	review(t, c, tok)
	if f.count(tok) != 2 {
		t.Fatalf("after exp: %d TokenReviews, want 2 (the answer must not outlive the token)", f.count(tok))
	}
	if h, m := counterValue(t, reg, "warden_tokenreview_cache_hits_total", map[string]string{"source": "cache"}),
		counterValue(t, reg, "warden_tokenreview_cache_misses_total", nil); h != 1 || m != 2 {
		t.Fatalf("hits=%v misses=%v, want 1 and 2", h, m)
	}
}

func TestTokenReviewCacheTTLCapsLongTokens(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	f := &countingReviews{}
	c, _ := newTestCache(t, f, clk, WithTokenReviewTTL(10*time.Minute))
	long := jwtWithExp("good", clk.Now().Add(30*24*time.Hour))
	noExp := jwtWithExp("good-noexp", time.Time{})
	opaque := "good-opaque-not-a-jwt"
	for _, tok := range []string{long, noExp, opaque} {
		review(t, c, tok)
	}
	clk.Add(10*time.Minute - time.Second)
	for _, tok := range []string{long, noExp, opaque} {
		review(t, c, tok)
		if f.count(tok) != 1 {
			t.Fatalf("%s within TTL: %d TokenReviews, want 1", tok[:12], f.count(tok))
		}
	}
	clk.Add(time.Second)
	for _, tok := range []string{long, noExp, opaque} {
		review(t, c, tok)
		if f.count(tok) != 2 {
			t.Fatalf("%s at TTL: %d TokenReviews, want 2", tok[:12], f.count(tok))
		}
	}
	// An expired token's answer is not kept at all.
	expired := jwtWithExp("good-expired", clk.Now().Add(-time.Second))
	review(t, c, expired)
	review(t, c, expired)
	if f.count(expired) != 2 {
		t.Fatalf("expired token: %d TokenReviews, want 2", f.count(expired))
	}
}

func TestTokenReviewCacheNegativeAndErrors(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	f := &countingReviews{}
	c, _ := newTestCache(t, f, clk, WithTokenReviewNegativeTTL(5*time.Second))
	bad := jwtWithExp("forged", clk.Now().Add(time.Hour))
	if review(t, c, bad).Status.Authenticated {
		t.Fatal("forged token authenticated")
	}
	clk.Add(4 * time.Second)
	if res := review(t, c, bad); res.Status.Authenticated || res.Status.Error != "invalid bearer token" || f.count(bad) != 1 {
		t.Fatalf("refusal within negative TTL: %+v after %d TokenReviews, want the cached refusal", res.Status, f.count(bad))
	}
	clk.Add(time.Second)
	review(t, c, bad)
	if f.count(bad) != 2 {
		t.Fatalf("refusal after negative TTL: %d TokenReviews, want 2", f.count(bad))
	}
	// A failed call is not an answer: it is never cached.
	for range 3 {
		if _, err := c.Create(context.Background(), &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: "fail"}}, metav1.CreateOptions{}); err == nil {
			t.Fatal("call error not returned")
		}
	}
	if f.count("fail") != 3 {
		t.Fatalf("failing call made %d times, want 3 (errors are not cached)", f.count("fail"))
	}
}

func TestTokenReviewCacheKeyIncludesAudiences(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	f := &countingReviews{}
	c, _ := newTestCache(t, f, clk)
	review(t, c, "good", "warden")
	review(t, c, "good", "other")
	review(t, c, "good", "warden", "other")
	review(t, c, "good", "wardenother")
	review(t, c, "good", "warden")
	if f.count("good") != 4 {
		t.Fatalf("%d TokenReviews for 4 distinct audience sets, want 4", f.count("good"))
	}
	if keyOf(authnv1.TokenReviewSpec{Token: "ab", Audiences: []string{"c"}}) == keyOf(authnv1.TokenReviewSpec{Token: "a", Audiences: []string{"bc"}}) {
		t.Fatal("token and audience boundaries collide in the key")
	}
}

func TestTokenReviewCacheHoldsNoRawToken(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	f := &countingReviews{}
	c, _ := newTestCache(t, f, clk)
	tok := "good-secret-token-value"
	res := review(t, c, tok)
	res.Status.User.Username = "mutated" // the caller's copy, not the cache's
	c.mu.Lock()
	for k, el := range c.entries {
		e := el.Value.(*reviewEntry)
		if strings.Contains(fmt.Sprintf("%x %s %+v", k, k[:], e), tok) {
			t.Errorf("cache entry holds the raw token: %+v", e)
		}
	}
	c.mu.Unlock()
	if got := review(t, c, tok).Status.User.Username; got != "system:serviceaccount:demo:web" {
		t.Fatalf("cached user = %q: a caller's change leaked into the cache", got)
	}
}

func TestTokenReviewCacheEvictsLeastRecentlyUsed(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	f := &countingReviews{}
	c, reg := newTestCache(t, f, clk, WithTokenReviewCacheSize(2))
	review(t, c, "good-a")
	review(t, c, "good-b")
	review(t, c, "good-a") // a is now the most recently used
	review(t, c, "good-c") // evicts b
	if c.Len() != 2 {
		t.Fatalf("cache holds %d answers, want 2", c.Len())
	}
	review(t, c, "good-a")
	review(t, c, "good-c")
	if f.count("good-a") != 1 || f.count("good-c") != 1 {
		t.Fatalf("a=%d c=%d TokenReviews, want 1 each (kept)", f.count("good-a"), f.count("good-c"))
	}
	review(t, c, "good-b")
	if f.count("good-b") != 2 {
		t.Fatalf("b: %d TokenReviews, want 2 (evicted)", f.count("good-b"))
	}
	if ev := counterValue(t, reg, "warden_tokenreview_cache_evictions_total", nil); ev != 2 {
		t.Fatalf("evictions = %v, want 2 (b, then a when b came back)", ev)
	}
}

func TestTokenReviewCacheCollapsesIdenticalRequests(t *testing.T) {
	const n = 50
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	release, unblock := releaser(t)
	f := &countingReviews{gate: func(string) { <-release }}
	c, reg := newTestCache(t, f, clk)
	joined := make(chan struct{}, n)
	c.joined = func() { joined <- struct{}{} }

	tok := jwtWithExp("good", clk.Now().Add(time.Hour))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			res, err := c.Create(context.Background(), &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: tok, Audiences: []string{"warden"}}}, metav1.CreateOptions{})
			if err == nil && !res.Status.Authenticated {
				err = errors.New("not authenticated")
			}
			errs <- err
		})
	}
	timeout := time.After(10 * time.Second)
	for i := 0; i < n-1; i++ { // all but the caller that made the call are waiting on it
		select {
		case <-joined:
		case <-timeout:
			t.Fatalf("only %d of %d callers joined the call in flight", i, n-1)
		}
	}
	unblock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.count(tok) != 1 {
		t.Fatalf("%d parallel authentications made %d TokenReviews, want 1", n, f.count(tok))
	}
	if got := counterValue(t, reg, "warden_tokenreview_cache_hits_total", map[string]string{"source": "inflight"}); got != n-1 {
		t.Fatalf("in-flight hits = %v, want %d", got, n-1)
	}
}

func TestTokenReviewCacheReviewsDifferentTokensConcurrently(t *testing.T) {
	const n = 8
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	// Every call waits until all n are in flight at once: a cache that serialised
	// the calls would never get there.
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	var mu sync.Mutex
	alone := 0 // calls that gave up waiting for the others
	f := &countingReviews{gate: func(string) {
		arrived.Done()
		select {
		case <-all:
		case <-time.After(5 * time.Second):
			mu.Lock()
			alone++
			mu.Unlock()
		}
	}}
	c, _ := newTestCache(t, f, clk)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { review(t, c, fmt.Sprintf("good-%d", i)) })
	}
	wg.Wait()
	if alone != 0 {
		t.Fatalf("%d of the %d TokenReviews for different tokens waited in vain for the others: calls were serialised", alone, n)
	}
	if f.total() != n {
		t.Fatalf("%d TokenReviews, want %d", f.total(), n)
	}
}

func TestTokenReviewCacheCallerCancelDoesNotFailOthers(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	release, unblock := releaser(t)
	f := &countingReviews{gate: func(string) { <-release }}
	c, _ := newTestCache(t, f, clk)
	joined := make(chan struct{}, 1)
	c.joined = func() { joined <- struct{}{} }
	req := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: "good", Audiences: []string{"warden"}}}

	first, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() { _, err := c.Create(first, req, metav1.CreateOptions{}); firstErr <- err }()
	second := make(chan *authnv1.TokenReview, 1)
	go func() {
		res, err := c.Create(context.Background(), req, metav1.CreateOptions{})
		if err != nil {
			t.Error(err)
		}
		second <- res
	}()
	select { // one caller made the call, the other waits on it
	case <-joined:
	case <-time.After(10 * time.Second):
		t.Fatal("the second caller never joined the call in flight")
	}
	cancel()
	// Whichever caller was cancelled, the other one gets the answer.
	unblock()
	res := <-second
	if err := <-firstErr; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	if res == nil || !res.Status.Authenticated {
		t.Fatalf("waiting caller got %+v, want the authenticated answer", res)
	}
	if f.count("good") != 1 {
		t.Fatalf("%d TokenReviews, want 1", f.count("good"))
	}
}

func TestTokenReviewAuthOverCache(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	f := &countingReviews{}
	c, _ := newTestCache(t, f, clk)
	a := &TokenReviewAuth{Reviews: c, Audience: "warden"}
	for range 3 {
		id, err := a.Authenticate(context.Background(), "good")
		if want := (Identity{Namespace: "demo", ServiceAccount: "web", Pod: "web-0"}); err != nil || !reflect.DeepEqual(id, want) {
			t.Fatalf("identity = %+v, %v; want %+v", id, err, want)
		}
		if _, err := a.Authenticate(context.Background(), "forged"); err == nil || !strings.Contains(err.Error(), "invalid bearer token") {
			t.Fatalf("forged token: %v", err)
		}
	}
	if f.total() != 2 {
		t.Fatalf("%d TokenReviews for 6 authentications of 2 tokens, want 2", f.total())
	}
}

func TestTokenReviewCacheMetricsRegistrationFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewTokenReviewCache(&countingReviews{}, WithTokenReviewMetrics(reg)); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTokenReviewCache(&countingReviews{}, WithTokenReviewMetrics(reg)); err == nil {
		t.Fatal("second cache registered the same metrics without an error")
	}
}

func TestJWTExpiry(t *testing.T) {
	exp := time.Unix(1_700_000_123, 0)
	if got, ok := jwtExpiry(jwtWithExp("x", exp)); !ok || !got.Equal(exp) {
		t.Fatalf("jwtExpiry = %v, %v; want %v", got, ok, exp)
	}
	enc := base64.RawURLEncoding.EncodeToString
	for _, tok := range []string{"", "a.b", "a.!!!.c", "a." + enc([]byte(`{"exp":"soon"}`)) + ".c",
		"a." + enc([]byte(`{"exp":-1}`)) + ".c", "a." + enc([]byte(`[]`)) + ".c"} {
		if got, ok := jwtExpiry(tok); ok {
			t.Errorf("jwtExpiry(%q) = %v, want none", tok, got)
		}
	}
}
