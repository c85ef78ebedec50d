package xds

import (
	"testing"
	"time"

	alsdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// TestObservePortsMeshedCaller: a plaintext caller shows until it is meshed, by either
// sign: a later mTLS entry from its address to the port, or a sidecar of its address
// connecting after its plaintext entries. Plaintext sent after both still shows.
func TestObservePortsMeshedCaller(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	plain := func(s int, ip string, port uint32) AccessEntry {
		return AccessEntry{Time: at(s), Proxy: "web.shop", Port: port, Peer: Plaintext, Source: ip + ":40000"}
	}
	mtls := func(s int, ip string, port uint32) AccessEntry {
		return AccessEntry{Time: at(s), Proxy: "web.shop", Port: port, Peer: "spiffe://cluster.local/ns/legacy/sa/sleep", Source: ip + ":40000"}
	}
	for _, tc := range []struct {
		name     string
		entries  []AccessEntry
		sidecars map[string]time.Time
		plain    int // plaintext entries of 10.0.0.1 on port 80 still shown
		meshed   int
	}{
		{"never meshed", []AccessEntry{plain(1, "10.0.0.1", 80), plain(2, "10.0.0.1", 80)}, nil, 2, 0},
		{"later mTLS from the same address", []AccessEntry{plain(1, "10.0.0.1", 80), mtls(3, "10.0.0.1", 80)}, nil, 0, 1},
		{"mTLS from another address", []AccessEntry{plain(1, "10.0.0.1", 80), mtls(3, "10.0.0.2", 80)}, nil, 1, 0},
		{"mTLS to another port", []AccessEntry{plain(1, "10.0.0.1", 80), mtls(3, "10.0.0.1", 81)}, nil, 1, 0},
		{"earlier mTLS, plaintext again", []AccessEntry{mtls(1, "10.0.0.1", 80), plain(3, "10.0.0.1", 80)}, nil, 1, 0},
		{"sidecar connected after", []AccessEntry{plain(1, "10.0.0.1", 80)}, map[string]time.Time{"10.0.0.1": at(2)}, 0, 1},
		{"sidecar of another address", []AccessEntry{plain(1, "10.0.0.1", 80)}, map[string]time.Time{"10.0.0.2": at(2)}, 1, 0},
		{"plaintext after the sidecar", []AccessEntry{plain(1, "10.0.0.1", 80), plain(3, "10.0.0.1", 80)}, map[string]time.Time{"10.0.0.1": at(2)}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *ObservedPort
			for _, p := range ObservePorts(tc.entries, tc.sidecars) {
				if p.Port == 80 {
					got = &p
				}
			}
			if got == nil {
				t.Fatal("no port 80")
			}
			if got.Plaintext["10.0.0.1"] != tc.plain || got.Meshed["10.0.0.1"] != tc.meshed {
				t.Errorf("plaintext %v meshed %v, want %d and %d", got.Plaintext, got.Meshed, tc.plain, tc.meshed)
			}
		})
	}
}

// TestTCPEntryNamesTheRule: a connection the network RBAC filter closed carries no
// response flag, only its termination details; the entry names the rule from them.
func TestTCPEntryNamesTheRule(t *testing.T) {
	for details, want := range map[string]string{
		"rbac_access_denied_matched_policy[ns[foo]-policy[tcp-policy]-rule[0]]": "ns[foo]-policy[tcp-policy]-rule[0]",
		"rbac_access_denied_matched_policy[none]":                               NoAllowMatched,
	} {
		e := tcpEntry(Identity{Namespace: "foo", Pod: "tcp-echo"}, time.Now(), &alsdata.TCPAccessLogEntry{
			CommonProperties: &alsdata.AccessLogCommon{ConnectionTerminationDetails: details}})
		if !e.Denied || e.Policy != want || e.Protocol != "TCP" {
			t.Errorf("%s: denied %v policy %q, want %q", details, e.Denied, e.Policy, want)
		}
	}
}

// TestAccessLogMetrics: denials are counted by namespace and deciding rule, and
// requests by workload port and transport, so plaintext requests per workload port
// can be scraped.
func TestAccessLogMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	w := NewAccessWindow(10, 1<<20, reg)
	w.add(AccessEntry{Namespace: "foo", Pod: "httpbin", Port: 8000, Peer: "spiffe://cluster.local/ns/foo/sa/sleep",
		Denied: true, Policy: "ns[foo]-policy[deny-admin]-rule[1]"})
	w.add(AccessEntry{Namespace: "foo", Pod: "httpbin", Port: 8000, Peer: Plaintext})
	w.add(AccessEntry{Namespace: "foo", Pod: "httpbin", Port: 8000, Peer: Plaintext})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) float64 {
		for _, f := range fams {
			if f.GetName() != name {
				continue
			}
		metric:
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
						continue metric
					}
				}
				return m.GetCounter().GetValue()
			}
		}
		return -1
	}
	if v := value("warden_denials_total", map[string]string{"namespace": "foo", "policy": "ns[foo]-policy[deny-admin]-rule[1]"}); v != 1 {
		t.Errorf("warden_denials_total for the rule = %v, want 1", v)
	}
	if v := value("warden_observed_requests_total", map[string]string{"namespace": "foo", "pod": "httpbin", "port": "8000", "transport": "plaintext"}); v != 2 {
		t.Errorf("plaintext requests of httpbin.foo:8000 = %v, want 2", v)
	}
	if v := value("warden_observed_requests_total", map[string]string{"namespace": "foo", "pod": "httpbin", "port": "8000", "transport": "mtls"}); v != 1 {
		t.Errorf("mtls requests of httpbin.foo:8000 = %v, want 1", v)
	}
}
