package xds

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// Defaults of a TokenReviewCache.
const (
	DefaultTokenReviewTTL         = 10 * time.Minute
	DefaultTokenReviewNegativeTTL = 5 * time.Second
	DefaultTokenReviewCacheSize   = 10000
	// tokenReviewTimeout bounds one TokenReview call. The call outlives the caller
	// that started it (others may be waiting for the same answer), never this.
	tokenReviewTimeout = 30 * time.Second
)

// TokenReviewCache is a TokenReviewInterface that remembers the API server's answers,
// so a fleet of proxies reconnecting at once costs one TokenReview per token, not one
// per stream. It is safe for concurrent use.
//
//   - The key is the SHA-256 of the token and the requested audiences; the raw token
//     is kept neither as a key nor in a cached value.
//   - An authenticated answer is kept until the token's own exp claim (read from the
//     JWT payload without verifying it, only to bound the lifetime), at most the TTL.
//     authentication/v1 TokenReviewStatus carries no expiry of its own; the exp claim
//     is the only bound the API server's answer implies.
//   - A refused token is remembered for the (short) negative TTL; an error of the call
//     itself (network, 429, 5xx) is never cached.
//   - At most Size answers are kept, the least recently used evicted first.
//   - Concurrent requests for one key share a single call; requests for different
//     keys call the API server concurrently (no lock is held across a call).
type TokenReviewCache struct {
	next        authnclient.TokenReviewInterface
	ttl         time.Duration
	negativeTTL time.Duration
	size        int
	now         func() time.Time
	reg         prometheus.Registerer

	mu       sync.Mutex
	entries  map[reviewKey]*list.Element // of *reviewEntry
	lru      *list.List                  // front: most recently used
	inflight map[reviewKey]*reviewCall

	hits      *prometheus.CounterVec
	misses    prometheus.Counter
	evictions prometheus.Counter

	joined func() // test hook: a caller is waiting for a call in flight
}

type reviewKey [sha256.Size]byte

type reviewEntry struct {
	key     reviewKey
	status  authnv1.TokenReviewStatus
	expires time.Time
}

// reviewCall is one TokenReview in flight; done is closed once res or err is set.
type reviewCall struct {
	done chan struct{}
	res  *authnv1.TokenReview
	err  error
}

// TokenReviewCacheOption configures a TokenReviewCache.
type TokenReviewCacheOption func(*TokenReviewCache)

// WithTokenReviewTTL caps how long an authenticated answer is kept (default 10 min).
// Zero or less disables caching of authenticated answers.
func WithTokenReviewTTL(d time.Duration) TokenReviewCacheOption {
	return func(c *TokenReviewCache) { c.ttl = d }
}

// WithTokenReviewNegativeTTL sets how long a refused token is remembered (default 5 s).
// Zero or less disables caching of refusals.
func WithTokenReviewNegativeTTL(d time.Duration) TokenReviewCacheOption {
	return func(c *TokenReviewCache) { c.negativeTTL = d }
}

// WithTokenReviewCacheSize bounds the number of answers kept (default 10,000).
// Zero or less disables the cache (identical concurrent requests are still shared).
func WithTokenReviewCacheSize(n int) TokenReviewCacheOption {
	return func(c *TokenReviewCache) { c.size = n }
}

// WithTokenReviewClock sets the clock that ages entries (default time.Now).
func WithTokenReviewClock(now func() time.Time) TokenReviewCacheOption {
	return func(c *TokenReviewCache) { c.now = now }
}

// WithTokenReviewMetrics registers the cache's metrics in reg:
// warden_tokenreview_cache_hits_total{source="cache"|"inflight"},
// warden_tokenreview_cache_misses_total (each one a TokenReview call) and
// warden_tokenreview_cache_evictions_total.
func WithTokenReviewMetrics(reg prometheus.Registerer) TokenReviewCacheOption {
	return func(c *TokenReviewCache) { c.reg = reg }
}

// NewTokenReviewCache wraps next (clientset.AuthenticationV1().TokenReviews()). It
// fails only when its metrics cannot be registered.
func NewTokenReviewCache(next authnclient.TokenReviewInterface, opts ...TokenReviewCacheOption) (*TokenReviewCache, error) {
	c := &TokenReviewCache{
		next:        next,
		ttl:         DefaultTokenReviewTTL,
		negativeTTL: DefaultTokenReviewNegativeTTL,
		size:        DefaultTokenReviewCacheSize,
		now:         time.Now,
		entries:     make(map[reviewKey]*list.Element),
		lru:         list.New(),
		inflight:    make(map[reviewKey]*reviewCall),
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_tokenreview_cache_hits_total",
			Help: "Token authentications answered without a TokenReview call: from the cache, or by sharing one in flight."},
			[]string{"source"}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_tokenreview_cache_misses_total",
			Help: "Token authentications that made a TokenReview call."}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_tokenreview_cache_evictions_total",
			Help: "Cached TokenReview answers dropped to keep the cache within its size."}),
	}
	for _, o := range opts {
		o(c)
	}
	if c.reg != nil {
		for _, m := range []prometheus.Collector{c.hits, c.misses, c.evictions} {
			if err := c.reg.Register(m); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// Create answers a TokenReview from the cache, or asks the API server once for every
// concurrent caller with the same token and audiences. The answer is the caller's own
// spec with the reviewed status; the caller may modify it.
func (c *TokenReviewCache) Create(ctx context.Context, tr *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error) {
	if tr == nil {
		return nil, errors.New("TokenReview is nil")
	}
	key := keyOf(tr.Spec)
	c.mu.Lock()
	if st, ok := c.lookup(key); ok {
		c.mu.Unlock()
		c.hits.WithLabelValues("cache").Inc()
		return answer(tr, st), nil
	}
	call, shared := c.inflight[key]
	if !shared {
		call = &reviewCall{done: make(chan struct{})}
		c.inflight[key] = call
	}
	c.mu.Unlock()

	if shared {
		c.hits.WithLabelValues("inflight").Inc()
		if c.joined != nil {
			c.joined()
		}
	} else {
		c.misses.Inc()
		go c.review(ctx, key, tr.DeepCopy(), opts, call)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-call.done:
	}
	if call.err != nil {
		return nil, call.err
	}
	return answer(tr, call.res.Status), nil
}

// review makes the one call for key and stores its answer. It runs on its own
// goroutine with its own deadline, so a caller that gives up does not fail the others
// waiting for the same answer.
func (c *TokenReviewCache) review(ctx context.Context, key reviewKey, tr *authnv1.TokenReview, opts metav1.CreateOptions, call *reviewCall) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenReviewTimeout)
	defer cancel()
	res, err := c.next.Create(ctx, tr, opts)
	if err == nil && res == nil {
		err = errors.New("TokenReview returned no object")
	}
	call.res, call.err = res, err
	c.mu.Lock()
	delete(c.inflight, key)
	if err == nil {
		c.store(key, res.Status, c.lifetime(tr.Spec.Token, res.Status))
	}
	c.mu.Unlock()
	close(call.done)
}

// lifetime is how long an answer about token may be kept: the negative TTL for a
// refusal; for an authenticated token the TTL, never past the token's exp claim.
func (c *TokenReviewCache) lifetime(token string, st authnv1.TokenReviewStatus) time.Duration {
	if !st.Authenticated {
		return c.negativeTTL
	}
	ttl := c.ttl
	if exp, ok := jwtExpiry(token); ok {
		ttl = min(ttl, exp.Sub(c.now()))
	}
	return ttl
}

// lookup returns the live answer for key, dropping an expired one. c.mu is held.
func (c *TokenReviewCache) lookup(key reviewKey) (authnv1.TokenReviewStatus, bool) {
	el, ok := c.entries[key]
	if !ok {
		return authnv1.TokenReviewStatus{}, false
	}
	e := el.Value.(*reviewEntry)
	if !c.now().Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, key)
		return authnv1.TokenReviewStatus{}, false
	}
	c.lru.MoveToFront(el)
	return e.status, true
}

// store keeps st for ttl, evicting the least recently used answers beyond the size.
// c.mu is held.
func (c *TokenReviewCache) store(key reviewKey, st authnv1.TokenReviewStatus, ttl time.Duration) {
	if ttl <= 0 || c.size <= 0 {
		return
	}
	e := &reviewEntry{key: key, status: *st.DeepCopy(), expires: c.now().Add(ttl)}
	if el, ok := c.entries[key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*reviewEntry).key)
		c.evictions.Inc()
	}
}

// Len is the number of answers held (expired ones included until looked up or evicted).
func (c *TokenReviewCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// answer is the caller's request with a copy of the reviewed status.
func answer(req *authnv1.TokenReview, st authnv1.TokenReviewStatus) *authnv1.TokenReview {
	out := req.DeepCopy()
	out.Status = *st.DeepCopy()
	return out
}

// keyOf hashes the token and the audiences, each length-prefixed so no two specs
// share a key.
func keyOf(spec authnv1.TokenReviewSpec) reviewKey {
	h := sha256.New()
	var n [8]byte
	write := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	write(spec.Token)
	binary.BigEndian.PutUint64(n[:], uint64(len(spec.Audiences)))
	h.Write(n[:])
	for _, a := range spec.Audiences {
		write(a)
	}
	var k reviewKey
	h.Sum(k[:0])
	return k
}

// jwtExpiry reads the exp claim of a JWT without verifying anything: it only bounds
// how long the API server's answer is remembered.
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	f, err := claims.Exp.Float64()
	if err != nil || f <= 0 || f > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}
