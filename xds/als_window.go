package xds

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Default caps of the access log window.
const (
	DefaultWindowEntries = 20000
	DefaultWindowBytes   = 16 << 20
)

// AccessWindow holds the newest access log entries, within a cap on entries and on
// bytes: an entry that does not fit pushes the oldest out, and every entry pushed out
// is counted (dropped). It never grows past its caps whatever proxies send.
type AccessWindow struct {
	maxEntries, maxBytes int

	mu       sync.Mutex
	ring     []AccessEntry // oldest first from head
	head     int
	n        int
	bytes    int
	dropped  uint64
	received uint64
	rejected uint64

	m *alsMetrics
}

type alsMetrics struct {
	entries  prometheus.Counter
	dropped  prometheus.Counter
	rejected prometheus.Counter
	denials  *prometheus.CounterVec
	dryRun   *prometheus.CounterVec
	observed *prometheus.CounterVec
}

func newALSMetrics(reg prometheus.Registerer) *alsMetrics {
	m := &alsMetrics{
		entries: prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_access_log_entries_total",
			Help: "Access log entries received from proxies."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_access_log_dropped_total",
			Help: "Access log entries pushed out of the bounded window by newer ones."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_access_log_streams_rejected_total",
			Help: "Access log streams closed because they claimed a node other than their credential's."}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_denials_total",
			Help: "Requests and connections denied by RBAC, by workload namespace and deciding policy rule."}, []string{"namespace", "policy"}),
		dryRun: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_dry_run_denials_total",
			Help: "Requests and connections a dry-run policy would have denied, by namespace and rule."}, []string{"namespace", "policy"}),
		observed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_observed_requests_total",
			Help: "Logged requests and connections by workload (namespace, pod), port and transport (mtls or plaintext)."}, []string{"namespace", "pod", "port", "transport"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.entries, m.dropped, m.rejected, m.denials, m.dryRun, m.observed} {
			_ = reg.Register(c)
		}
	}
	return m
}

// NewAccessWindow returns a window of at most maxEntries entries and maxBytes bytes
// (defaults when <= 0), reporting to reg when set.
func NewAccessWindow(maxEntries, maxBytes int, reg prometheus.Registerer) *AccessWindow {
	if maxEntries <= 0 {
		maxEntries = DefaultWindowEntries
	}
	if maxBytes <= 0 {
		maxBytes = DefaultWindowBytes
	}
	return &AccessWindow{maxEntries: maxEntries, maxBytes: maxBytes, ring: make([]AccessEntry, maxEntries), m: newALSMetrics(reg)}
}

func (w *AccessWindow) countRejected() {
	w.mu.Lock()
	w.rejected++
	w.mu.Unlock()
	w.m.rejected.Inc()
}

func (w *AccessWindow) add(e AccessEntry) {
	size := e.size()
	w.m.entries.Inc()
	if e.Denied {
		w.m.denials.WithLabelValues(e.Namespace, e.Policy).Inc()
	}
	if e.DryRunDenied {
		w.m.dryRun.WithLabelValues(e.Namespace, e.DryRunPolicy).Inc()
	}
	transport := "mtls"
	if e.Peer == Plaintext {
		transport = Plaintext
	}
	w.m.observed.WithLabelValues(e.Namespace, e.Pod, portLabel(e.Port), transport).Inc()

	w.mu.Lock()
	defer w.mu.Unlock()
	w.received++
	for w.n > 0 && (w.n >= w.maxEntries || w.bytes+size > w.maxBytes) {
		old := &w.ring[w.head]
		w.bytes -= old.size()
		*old = AccessEntry{}
		w.head = (w.head + 1) % w.maxEntries
		w.n--
		w.dropped++
		w.m.dropped.Inc()
	}
	if size > w.maxBytes {
		w.dropped++
		w.m.dropped.Inc()
		return
	}
	w.ring[(w.head+w.n)%w.maxEntries] = e
	w.n++
	w.bytes += size
}

func portLabel(p uint32) string {
	if p == 0 {
		return ""
	}
	return itoa(p)
}

func itoa(p uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + p%10)
		p /= 10
		if p == 0 {
			break
		}
	}
	return string(b[i:])
}

// WindowStats are the window's counters and fill.
type WindowStats struct {
	Entries    int    `json:"entries"`
	Bytes      int    `json:"bytes"`
	MaxEntries int    `json:"maxEntries"`
	MaxBytes   int    `json:"maxBytes"`
	Received   uint64 `json:"received"`
	Dropped    uint64 `json:"dropped"`
	Rejected   uint64 `json:"rejectedStreams"`
}

// Stats returns the window's fill and counters.
func (w *AccessWindow) Stats() WindowStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WindowStats{Entries: w.n, Bytes: w.bytes, MaxEntries: w.maxEntries, MaxBytes: w.maxBytes,
		Received: w.received, Dropped: w.dropped, Rejected: w.rejected}
}

// Entries returns the entries newer than since (all when zero) that keep returns
// true for, newest first.
func (w *AccessWindow) Entries(since time.Time, keep func(*AccessEntry) bool) []AccessEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []AccessEntry
	for i := w.n - 1; i >= 0; i-- {
		e := &w.ring[(w.head+i)%w.maxEntries]
		if !since.IsZero() && e.Time.Before(since) {
			continue
		}
		if keep == nil || keep(e) {
			out = append(out, *e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out
}

// DenialCount is the number of denials of one workload by one rule.
type DenialCount struct {
	Proxy  string `json:"proxy"`
	Policy string `json:"policy"`
	Count  int    `json:"count"`
}

// CountDenials aggregates entries per proxy and policy (dry-run policies when dryRun),
// most first.
func CountDenials(entries []AccessEntry, dryRun bool) []DenialCount {
	type key struct{ proxy, policy string }
	counts := map[key]int{}
	for _, e := range entries {
		switch {
		case dryRun && e.DryRunDenied:
			counts[key{e.Proxy, e.DryRunPolicy}]++
		case !dryRun && e.Denied:
			counts[key{e.Proxy, e.Policy}]++
		}
	}
	var out []DenialCount
	for k, n := range counts {
		out = append(out, DenialCount{Proxy: k.proxy, Policy: k.policy, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		if out[i].Proxy != out[j].Proxy {
			return out[i].Proxy < out[j].Proxy
		}
		return out[i].Policy < out[j].Policy
	})
	return out
}

// AccessLog is the window of access log entries proxies sent.
func (s *Server) AccessLog() *AccessWindow { return s.window }

func (s *Server) alsWindow() *AccessWindow { return s.window }
