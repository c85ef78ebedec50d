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
		writeJSON(w, ObservedResponse{Window: s.window.Stats(), Ports: ObservePorts(s.window.Entries(since, keep))})
	})
}

func nonNil(e []AccessEntry) []AccessEntry {
	if e == nil {
		return []AccessEntry{}
	}
	return e
}

// ObservePorts groups entries per workload port into mTLS callers (by URI SAN) and
// plaintext callers (by source IP).
func ObservePorts(entries []AccessEntry) []ObservedPort {
	type key struct {
		proxy string
		port  uint32
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
			if p.Plaintext == nil {
				p.Plaintext = map[string]int{}
			}
			p.Plaintext[hostOf(e.Source)]++
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
