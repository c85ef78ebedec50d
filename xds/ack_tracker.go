package xds

import (
	"sort"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Sync states, as istioctl proxy-status names them.
const (
	StatusSynced  = "SYNCED"
	StatusStale   = "STALE"
	StatusNotSent = "NOT SENT"
	StatusError   = "ERROR"
)

// shortTypes maps the type URLs Warden serves to the short names users read.
var shortTypes = map[string]string{
	resource.ClusterType:  "CDS",
	resource.EndpointType: "EDS",
	resource.ListenerType: "LDS",
	resource.RouteType:    "RDS",
	resource.SecretType:   "SDS",
}

// ShortTypes lists the short type names in display order.
var ShortTypes = []string{"CDS", "LDS", "EDS", "RDS", "SDS"}

// typeState is what one proxy has been sent and has acknowledged for one type.
type typeState struct {
	intended     string // version of the current snapshot for this type ("" = none)
	empty        bool   // the current snapshot has no resources of this type
	requested    bool   // the proxy has subscribed to this type
	intendedAt   time.Time
	sentVersion  string
	sentNonce    string
	sentAt       time.Time
	ackedNonce   string
	ackedVersion string
	ackedAt      time.Time
	nackError    string // Envoy's message from the last NACK of the sent nonce; "" once acked
	nackAt       time.Time
	nackVersion  string // the version that was rejected
	pushes       uint64
	bytes        uint64
}

// proxyState is the tracked state of one connected proxy.
type proxyState struct {
	id             string
	namespace      string
	pod            string
	serviceAccount string
	envoyVersion   string
	connectedAt    time.Time
	streams        map[int64]bool
	types          map[string]*typeState // by type URL
	// evaluatedGen is the input generation this proxy's intent was last computed from;
	// while it is behind the tracker's generation the proxy is STALE, never SYNCED on an
	// intent that a newer input may already have changed.
	evaluatedGen uint64
}

// Tracker records, per proxy and per type, what was sent, acked and rejected.
// It is the single source of sync status for the debug endpoint, CSDS and metrics.
type Tracker struct {
	mu      sync.Mutex
	now     func() time.Time
	replica string
	proxies map[string]*proxyState
	metrics *Metrics
	gen     uint64    // current input generation
	genAt   time.Time // when it became current
}

// NewInput records that a new input generation is current.
func (t *Tracker) NewInput(gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen, t.genAt = gen, t.now()
}

// Evaluated records that a proxy's intent was computed from input generation gen.
func (t *Tracker) Evaluated(id string, gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.proxies[id]; p != nil && gen > p.evaluatedGen {
		p.evaluatedGen = gen
	}
}

// NewTracker returns an empty tracker. replica names this wardend instance.
func NewTracker(replica string, now func() time.Time, m *Metrics) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{now: now, replica: replica, proxies: map[string]*proxyState{}, metrics: m}
}

func (t *Tracker) proxy(id string) *proxyState {
	p := t.proxies[id]
	if p == nil {
		p = &proxyState{id: id, streams: map[int64]bool{}, types: map[string]*typeState{}}
		t.proxies[id] = p
	}
	return p
}

func (p *proxyState) typ(url string) *typeState {
	s := p.types[url]
	if s == nil {
		s = &typeState{}
		p.types[url] = s
	}
	return s
}

// Connected registers the stream of an authenticated proxy. A proxy has one stream:
// a newer one replaces the others (the server closes them), and what was sent and
// acknowledged on them says nothing about the new connection, so it is reset; the
// intent stays.
func (t *Tracker) Connected(streamID int64, id string, ident Identity, envoyVersion string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.proxy(id)
	if len(p.streams) == 0 {
		if t.metrics != nil {
			t.metrics.connected.Inc()
		}
	}
	p.connectedAt = t.now()
	p.streams = map[int64]bool{streamID: true}
	for _, s := range p.types {
		s.requested = false
		s.sentVersion, s.sentNonce, s.sentAt = "", "", time.Time{}
		s.ackedNonce, s.ackedVersion, s.ackedAt = "", "", time.Time{}
		s.nackError, s.nackAt, s.nackVersion = "", time.Time{}, ""
	}
	p.namespace, p.pod, p.serviceAccount, p.envoyVersion = ident.Namespace, ident.Pod, ident.ServiceAccount, envoyVersion
}

// Disconnected drops a stream; it reports whether that was the proxy's last one,
// in which case the proxy's state is forgotten.
func (t *Tracker) Disconnected(streamID int64, id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.proxies[id]
	if p == nil {
		return false
	}
	delete(p.streams, streamID)
	if len(p.streams) > 0 {
		return false
	}
	delete(t.proxies, id)
	if t.metrics != nil {
		t.metrics.connected.Dec()
	}
	return true
}

// Intended records the versions of the snapshot just set for a proxy, and how many
// resources of each type it holds.
func (t *Tracker) Intended(id string, versions map[string]string, counts map[string]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.proxies[id]
	if p == nil {
		return
	}
	now := t.now()
	for url, v := range versions {
		s := p.typ(url)
		if s.intended != v {
			s.intended, s.intendedAt = v, now
		}
		s.empty = counts[url] == 0
	}
}

// Sent records a response written to a proxy.
func (t *Tracker) Sent(id, typeURL, version, nonce string, size int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.proxies[id]
	if p == nil {
		return
	}
	s := p.typ(typeURL)
	s.sentVersion, s.sentNonce, s.sentAt = version, nonce, t.now()
	s.pushes++
	s.bytes += uint64(size)
	if t.metrics != nil {
		short := shortName(typeURL)
		t.metrics.pushes.WithLabelValues(short).Inc()
		t.metrics.pushBytes.WithLabelValues(short).Add(float64(size))
	}
}

// Request records an ACK or NACK. A request with an empty nonce (initial request or
// reconnect) or with a nonce other than the last one sent says nothing and is ignored.
// It reports whether the request was a NACK of the last sent response.
func (t *Tracker) Request(id, typeURL, nonce, version, errMsg string) (nack bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.proxies[id]
	if p == nil {
		return false
	}
	s := p.typ(typeURL)
	s.requested = true
	if nonce == "" || nonce != s.sentNonce {
		return false
	}
	now := t.now()
	if errMsg != "" {
		if s.nackError == "" || s.nackVersion != s.sentVersion {
			if t.metrics != nil {
				t.metrics.nacks.WithLabelValues(shortName(typeURL)).Inc()
			}
		}
		s.nackError, s.nackAt, s.nackVersion = errMsg, now, s.sentVersion
		return true
	}
	if version == "" { // delta ACKs name the nonce only
		version = s.sentVersion
	}
	if s.ackedNonce != nonce {
		s.ackedNonce, s.ackedVersion, s.ackedAt = nonce, version, now
		s.nackError = ""
		if t.metrics != nil && version == s.intended && !s.intendedAt.IsZero() {
			t.metrics.convergence.WithLabelValues(shortName(typeURL)).Observe(now.Sub(s.intendedAt).Seconds())
		}
	}
	return false
}

// Resumed records that a reconnecting proxy already holds version of typeURL (a delta
// client's initial resource versions matched its intent exactly), so nothing is sent
// and the type counts as acknowledged.
func (t *Tracker) Resumed(id, typeURL, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.proxies[id]
	if p == nil {
		return
	}
	s := p.typ(typeURL)
	now := t.now()
	s.sentVersion, s.sentNonce, s.sentAt = version, "resumed", now
	s.ackedVersion, s.ackedNonce, s.ackedAt = version, "resumed", now
	s.nackError = ""
}

// RejectedVersion is the version of type typeURL that the proxy last NACKed, if the
// NACK is still the latest word on it.
func (t *Tracker) RejectedVersion(id, typeURL string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.proxies[id]
	if p == nil {
		return ""
	}
	s := p.types[typeURL]
	if s == nil || s.nackError == "" {
		return ""
	}
	return s.nackVersion
}

func shortName(typeURL string) string {
	if s, ok := shortTypes[typeURL]; ok {
		return s
	}
	return typeURL
}

// TypeStatus is the sync state of one proxy for one type.
type TypeStatus struct {
	Status     string    `json:"status"`
	Intended   string    `json:"intended,omitempty"`
	Sent       string    `json:"sent,omitempty"`
	Acked      string    `json:"acked,omitempty"`
	Error      string    `json:"error,omitempty"`
	ErrorAt    time.Time `json:"errorAt,omitempty"`
	LastAckAt  time.Time `json:"lastAckAt,omitempty"`
	StaleFor   string    `json:"staleFor,omitempty"`
	SentNonce  string    `json:"sentNonce,omitempty"`
	AckedNonce string    `json:"ackedNonce,omitempty"`
	Pushes     uint64    `json:"pushes"`
	// Empty means Warden has nothing of this type for the proxy, so NOT SENT is expected
	// (Envoy never asks for routes when no listener refers to any).
	Empty bool `json:"empty,omitempty"`
	// Requested means the proxy has subscribed to this type. Envoy subscribes to a type
	// only when its configuration refers to one (no SDS without a TLS context).
	Requested bool `json:"requested,omitempty"`
}

// InSync reports whether this type needs nothing more: SYNCED, or NOT SENT because
// there is nothing to send or the proxy does not subscribe to the type.
func (ts TypeStatus) InSync() bool {
	return ts.Status == StatusSynced || (ts.Status == StatusNotSent && (ts.Empty || !ts.Requested))
}

// ProxyStatus is one row of `wardenctl status`.
type ProxyStatus struct {
	Name           string                `json:"name"` // pod name
	Namespace      string                `json:"namespace"`
	ID             string                `json:"id"`
	ServiceAccount string                `json:"serviceAccount"`
	EnvoyVersion   string                `json:"envoyVersion"`
	Wardend        string                `json:"wardend"`
	ConnectedAt    time.Time             `json:"connectedAt"`
	Types          map[string]TypeStatus `json:"types"`
}

// Synced reports whether every type is in sync (see TypeStatus.InSync).
func (p ProxyStatus) Synced() bool {
	for _, ts := range p.Types {
		if !ts.InSync() {
			return false
		}
	}
	return true
}

// Snapshot returns the status of every proxy, sorted by namespace and name.
func (t *Tracker) Snapshot() []ProxyStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	out := make([]ProxyStatus, 0, len(t.proxies))
	for _, p := range t.proxies {
		ps := ProxyStatus{Name: p.pod, Namespace: p.namespace, ID: p.id, ServiceAccount: p.serviceAccount,
			EnvoyVersion: p.envoyVersion, Wardend: t.replica, ConnectedAt: p.connectedAt, Types: map[string]TypeStatus{}}
		for url, short := range shortTypes {
			ts := p.typeStatus(url, now)
			if p.evaluatedGen < t.gen && ts.Status != StatusError {
				ts.Status, ts.StaleFor = StatusStale, now.Sub(t.genAt).Round(time.Millisecond).String()
			}
			ps.Types[short] = ts
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (p *proxyState) typeStatus(url string, now time.Time) TypeStatus {
	s := p.types[url]
	if s == nil {
		return TypeStatus{Status: StatusNotSent}
	}
	ts := TypeStatus{Intended: s.intended, Sent: s.sentVersion, Acked: s.ackedVersion, LastAckAt: s.ackedAt,
		SentNonce: s.sentNonce, AckedNonce: s.ackedNonce, Pushes: s.pushes, Empty: s.empty, Requested: s.requested}
	switch {
	case s.nackError != "":
		ts.Status, ts.Error, ts.ErrorAt = StatusError, s.nackError, s.nackAt
	case s.sentNonce == "":
		ts.Status = StatusNotSent
	case s.ackedNonce == s.sentNonce && s.sentVersion == s.intended:
		ts.Status = StatusSynced
	default:
		ts.Status = StatusStale
		since := s.intendedAt
		if s.sentAt.After(since) {
			since = s.sentAt
		}
		ts.StaleFor = now.Sub(since).Round(time.Millisecond).String()
	}
	return ts
}
