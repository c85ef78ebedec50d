package xds

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRateLogPerKeyBucket(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	r := NewRateLog(RateLogOptions{Every: 10 * time.Second, Burst: 3, Now: clk.Now})
	for i := range 3 {
		if ok, n := r.Allow("web-0.demo"); !ok || n != 0 {
			t.Fatalf("line %d of the burst: ok=%v suppressed=%d, want allowed", i, ok, n)
		}
	}
	for range 4 {
		if ok, _ := r.Allow("web-0.demo"); ok {
			t.Fatal("line beyond the burst allowed")
		}
	}
	// Another key has its own bucket.
	if ok, _ := r.Allow("10.0.0.9:4711"); !ok {
		t.Fatal("a second key was limited by the first one's lines")
	}
	clk.Add(9 * time.Second)
	if ok, _ := r.Allow("web-0.demo"); ok {
		t.Fatal("allowed before a token was refilled")
	}
	clk.Add(time.Second)
	if ok, n := r.Allow("web-0.demo"); !ok || n != 5 {
		t.Fatalf("after refill: ok=%v suppressed=%d, want allowed with 5 suppressed", ok, n)
	}
	if ok, _ := r.Allow("web-0.demo"); ok {
		t.Fatal("one refilled token allowed two lines")
	}
	clk.Add(time.Hour) // refills to the burst, never beyond
	for i := range 3 {
		if ok, n := r.Allow("web-0.demo"); !ok || (i == 0 && n != 1) || (i > 0 && n != 0) {
			t.Fatalf("after an hour, line %d: ok=%v suppressed=%d", i, ok, n)
		}
	}
	if ok, _ := r.Allow("web-0.demo"); ok {
		t.Fatal("bucket refilled beyond its burst")
	}
}

func TestRateLogBoundsKeys(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	r := NewRateLog(RateLogOptions{Every: time.Second, Burst: 2, MaxKeys: 3, Now: clk.Now})
	for _, k := range []string{"a", "b", "c"} {
		r.Allow(k)
	}
	// Beyond MaxKeys new keys share one bucket: together they log no more than one key.
	allowed := 0
	for i := range 100 {
		if ok, _ := r.Allow("flood-" + string(rune('A'+i%26)) + string(rune('a'+i/26))); ok {
			allowed++
		}
	}
	if allowed != 2 || r.Keys() != 3 {
		t.Fatalf("100 new keys beyond the bound: %d lines allowed, %d keys tracked; want 2 and 3", allowed, r.Keys())
	}
	// Keys tracked before keep their own buckets.
	if ok, _ := r.Allow("a"); !ok {
		t.Fatal("tracked key lost its bucket to the flood")
	}
	// Once buckets are full again, their keys are forgotten to make room.
	clk.Add(time.Minute)
	if ok, _ := r.Allow("d"); !ok {
		t.Fatal("new key after the old ones went idle refused")
	}
	if r.Keys() != 1 {
		t.Fatalf("%d keys tracked after the idle ones were dropped, want 1", r.Keys())
	}
	// A key with suppressed lines is kept, so its count is not lost.
	r2 := NewRateLog(RateLogOptions{Every: time.Second, Burst: 1, MaxKeys: 1, Now: clk.Now})
	r2.Allow("x")
	r2.Allow("x") // suppressed
	clk.Add(time.Minute)
	r2.Allow("y") // no room: x still owes its count
	if ok, n := r2.Allow("x"); !ok || n != 1 {
		t.Fatalf("x after the sweep: ok=%v suppressed=%d, want allowed with 1 suppressed", ok, n)
	}
}

func TestRateLogLog(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	r := NewRateLog(RateLogOptions{Every: time.Second, Burst: 1, Now: clk.Now})
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if !r.Log(log, slog.LevelWarn, "p", "xDS stream rejected", "proxy", "p") {
		t.Fatal("first line not logged")
	}
	if r.Log(log, slog.LevelWarn, "p", "xDS stream rejected", "proxy", "p") {
		t.Fatal("second line logged")
	}
	clk.Add(time.Second)
	r.Log(log, slog.LevelWarn, "p", "xDS stream rejected", "proxy", "p")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || strings.Contains(lines[0], "suppressed") || !strings.Contains(lines[1], "suppressed=1") {
		t.Fatalf("log lines:\n%s\nwant two, the second saying suppressed=1", buf.String())
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("x", 5000)
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven cha… (11 bytes)"},
		{long, 8, "xxxxxxxx… (5000 bytes)"},
		{"héllo", 2, "h… (6 bytes)"},     // é is two bytes: not cut in half
		{"日本語", 4, "日… (9 bytes)"},       // three-byte characters
		{"a\xffb", 10, "a\uFFFDb"},       // invalid byte replaced, nothing cut
		{"ab\xffcd", 3, "ab… (5 bytes)"}, // the replacement does not fit
		{"abc", -1, "… (3 bytes)"},
		{"", 0, ""},
	} {
		got := Truncate(c.in, c.max)
		if got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q is not valid UTF-8", c.in, c.max, got)
		}
	}
}
