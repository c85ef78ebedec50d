package xds

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// DenialsResponse is the body of /debug/denials.
type DenialsResponse struct {
	Window  WindowStats   `json:"window"`
	DryRun  bool          `json:"dryRun,omitempty"`
	Counts  []DenialCount `json:"counts"`
	Entries []AccessEntry `json:"entries"`
}

// AccessLogResponse is the body of /debug/accesslog.
type AccessLogResponse struct {
	Window  WindowStats   `json:"window"`
	Entries []AccessEntry `json:"entries"`
}

// ObservedPort is what the access log window saw on one workload port.
type ObservedPort struct {
	Proxy     string         `json:"proxy"`
	Port      uint32         `json:"port"`
	MTLS      map[string]int `json:"mtls,omitempty"`      // caller URI SAN -> entries
	Plaintext map[string]int `json:"plaintext,omitempty"` // caller address (IP) -> entries
	// Meshed counts, per caller address, the plaintext entries no longer shown because
	// the caller has been meshed since (see ObservePorts).
	Meshed map[string]int `json:"meshed,omitempty"`
}

// ObservedResponse is the body of /debug/observedz.
type ObservedResponse struct {
	Window WindowStats    `json:"window"`
	Ports  []ObservedPort `json:"ports"`
}

// windowQuery reads pod=POD.NS (all when empty), namespace=NS and since=DURATION.
func (s *Server) windowQuery(r *http.Request) (keep func(*AccessEntry) bool, since time.Time, err error) {
	q := r.URL.Query()
	pod, ns := q.Get("pod"), q.Get("namespace")
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, since, fmt.Errorf("since=%q: want a positive duration such as 10m", v)
		}
		since = s.opts.Now().Add(-d)
	}
	if pod != "" && !strings.Contains(pod, ".") {
		return nil, since, fmt.Errorf("pod=%q: want POD.NAMESPACE", pod)
	}
	return func(e *AccessEntry) bool {
		return (pod == "" || e.Proxy == pod) && (ns == "" || e.Namespace == ns)
	}, since, nil
}

// registerAccessLog serves /debug/denials?pod=POD.NS&since=10m[&dryRun=true],
// /debug/observedz?pod=POD.NS&since=10m and /debug/accesslog?since=10m (every entry,
// for `wardenctl check --observed`). Like every debug endpoint they are for
// operators: loopback, or an operator token RBAC allows to get warden.io/debug named
// "denials", "observedz" or "accesslog" (OperatorAuth.Protect). They show callers' identities and
// addresses and request paths of the window, never headers or bodies.
func (s *Server) registerAccessLog(mux *http.ServeMux) {
	mux.HandleFunc("/debug/denials", func(w http.ResponseWriter, r *http.Request) {
		keep, since, err := s.windowQuery(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		dry := r.URL.Query().Get("dryRun") == "true"
		entries := s.window.Entries(since, func(e *AccessEntry) bool {
			return keep(e) && ((dry && e.DryRunDenied) || (!dry && e.Denied))
		})
		writeJSON(w, DenialsResponse{Window: s.window.Stats(), DryRun: dry, Counts: CountDenials(entries, dry), Entries: nonNil(entries)})
	})
	mux.HandleFunc("/debug/accesslog", func(w http.ResponseWriter, r *http.Request) {
		keep, since, err := s.windowQuery(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, AccessLogResponse{Window: s.window.Stats(), Entries: nonNil(s.window.Entries(since, keep))})
	})
	mux.HandleFunc("/debug/observedz", func(w http.ResponseWriter, r *http.Request) {
		keep, since, err := s.windowQuery(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, ObservedResponse{Window: s.window.Stats(), Ports: ObservePorts(s.window.Entries(since, keep), s.sidecarsByIP())})
	})
}

func nonNil(e []AccessEntry) []AccessEntry {
	if e == nil {
		return []AccessEntry{}
	}
	return e
}

// sidecarsByIP maps each pod address of a connected sidecar (its proven IPs, never
// what the node claims) to when that proxy connected.
func (s *Server) sidecarsByIP() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Time{}
	for _, p := range s.proxies {
		if p.node.Gateway || len(p.streams) == 0 || p.connectedAt.IsZero() {
			continue
		}
		for _, ip := range p.ident.IPs {
			if t, ok := out[ip]; !ok || p.connectedAt.Before(t) {
				out[ip] = p.connectedAt
			}
		}
	}
	return out
}

// ObservePorts groups entries per workload port into mTLS callers (by URI SAN) and
// plaintext callers (by source IP). A plaintext caller stops showing once it is
// meshed: its plaintext entries to a port are moved to Meshed when they are older
// than either a later entry from the same address to the same port over mTLS (its
// requests now arrive over mTLS), or the connection of a sidecar whose pod holds that
// address (sidecars: address -> when it connected; from then on the caller's requests
// go through its proxy). Plaintext entries newer than both still show: a meshed caller
// that keeps sending plaintext (a DestinationRule with tls DISABLE) stays visible.
func ObservePorts(entries []AccessEntry, sidecars map[string]time.Time) []ObservedPort {
	type key struct {
		proxy string
		port  uint32
	}
	type caller struct {
		key
		ip string
	}
	lastMTLS := map[caller]time.Time{}
	for _, e := range entries {
		if e.Peer == Plaintext {
			continue
		}
		c := caller{key{e.Proxy, e.Port}, hostOf(e.Source)}
		if e.Time.After(lastMTLS[c]) {
			lastMTLS[c] = e.Time
		}
	}
	by := map[key]*ObservedPort{}
	for _, e := range entries {
		k := key{e.Proxy, e.Port}
		p := by[k]
		if p == nil {
			p = &ObservedPort{Proxy: e.Proxy, Port: e.Port}
			by[k] = p
		}
		if e.Peer == Plaintext {
			ip := hostOf(e.Source)
			if e.Time.Before(lastMTLS[caller{k, ip}]) || e.Time.Before(sidecars[ip]) {
				if p.Meshed == nil {
					p.Meshed = map[string]int{}
				}
				p.Meshed[ip]++
				continue
			}
			if p.Plaintext == nil {
				p.Plaintext = map[string]int{}
			}
			p.Plaintext[ip]++
		} else {
			if p.MTLS == nil {
				p.MTLS = map[string]int{}
			}
			p.MTLS[e.Peer]++
		}
	}
	out := make([]ObservedPort, 0, len(by))
	for _, p := range by {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Proxy != out[j].Proxy {
			return out[i].Proxy < out[j].Proxy
		}
		return out[i].Port < out[j].Port
	})
	return out
}
