package xds

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults of a RateLog.
const (
	DefaultRateLogEvery   = 10 * time.Second
	DefaultRateLogBurst   = 5
	DefaultRateLogMaxKeys = 4096
)

// RateLogOptions configure a RateLog. Zero fields take the defaults.
type RateLogOptions struct {
	// Every is how often one more line per key is allowed once its burst is spent.
	Every time.Duration
	// Burst is how many lines a key may log at once.
	Burst int
	// MaxKeys bounds the keys tracked. Beyond it, lines of keys not yet tracked share
	// one bucket, so many keys (remote addresses, made-up node ids) together cannot
	// log more than one key would.
	MaxKeys int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// RateLog limits repetitive log lines, such as authentication failures and NACKs, per
// key (a proxy id or a remote address) with a token bucket per key. It is safe for
// concurrent use.
type RateLog struct {
	every   time.Duration
	burst   float64
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	keys      map[string]*logBucket
	overflow  logBucket // shared by keys beyond maxKeys
	lastSweep time.Time
}

type logBucket struct {
	tokens     float64
	last       time.Time
	suppressed int
}

// NewRateLog returns a limiter with o's settings.
func NewRateLog(o RateLogOptions) *RateLog {
	if o.Every <= 0 {
		o.Every = DefaultRateLogEvery
	}
	if o.Burst <= 0 {
		o.Burst = DefaultRateLogBurst
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultRateLogMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &RateLog{every: o.Every, burst: float64(o.Burst), maxKeys: o.MaxKeys, now: o.Now, keys: map[string]*logBucket{}}
	r.overflow.tokens = r.burst
	return r
}

// Allow reports whether a line for key may be logged now and, when it may, how many
// lines of key were suppressed since the last one allowed (so the line can say so).
func (r *RateLog) Allow(key string) (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	b := r.bucket(key, now)
	b.refill(now, r.every, r.burst)
	if b.tokens < 1 {
		b.suppressed++
		return false, 0
	}
	b.tokens--
	suppressed, b.suppressed = b.suppressed, 0
	return true, suppressed
}

// Log logs msg with args at level through log when key is allowed, adding
// "suppressed" (lines of key dropped since its last one) when some were. It reports
// whether the line was logged.
func (r *RateLog) Log(log *slog.Logger, level slog.Level, key, msg string, args ...any) bool {
	ok, n := r.Allow(key)
	if !ok {
		return false
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Log(context.Background(), level, msg, args...)
	return true
}

// Keys is the number of keys tracked (the shared overflow bucket not counted).
func (r *RateLog) Keys() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

// bucket returns key's bucket, creating it when there is room. r.mu is held.
func (r *RateLog) bucket(key string, now time.Time) *logBucket {
	if b, ok := r.keys[key]; ok {
		return b
	}
	if len(r.keys) >= r.maxKeys {
		r.sweep(now)
	}
	if len(r.keys) >= r.maxKeys {
		return &r.overflow
	}
	b := &logBucket{tokens: r.burst, last: now}
	r.keys[key] = b
	return b
}

// sweep forgets the keys whose bucket is full again with nothing suppressed: a new
// bucket for them would be the same. It runs at most once per refill time of a whole
// bucket, so a flood of new keys does not make every call walk the map. r.mu is held.
func (r *RateLog) sweep(now time.Time) {
	full := time.Duration(r.burst) * r.every
	if !r.lastSweep.IsZero() && now.Sub(r.lastSweep) < full {
		return
	}
	r.lastSweep = now
	for k, b := range r.keys {
		if b.suppressed == 0 && now.Sub(b.last) >= full-time.Duration(b.tokens*float64(r.every)) {
			delete(r.keys, k)
		}
	}
}

func (b *logBucket) refill(now time.Time, every time.Duration, burst float64) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+float64(d)/float64(every))
	}
	b.last = now
}

// Truncate returns s cut to at most max bytes of valid UTF-8 (never inside a
// character; invalid bytes become U+FFFD) followed by "… (N bytes)", N being the
// size of s, when anything was cut. A NACK's error detail or a rejected token can
// be kilobytes; a log line needs its start.
func Truncate(s string, max int) string {
	if max < 0 {
		max = 0
	}
	if len(s) <= max && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		n := utf8.RuneLen(r) // 3 for the U+FFFD that replaces an invalid byte
		if b.Len()+n > max {
			break
		}
		b.WriteRune(r)
		i += size
	}
	if i == len(s) {
		return b.String()
	}
	return b.String() + "… (" + strconv.Itoa(len(s)) + " bytes)"
}
