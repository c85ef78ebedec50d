package xds

import (
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestTrackerStatusRules(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	tr := NewTracker("wardend-0", c.now, nil)
	id := Identity{Namespace: "ns", ServiceAccount: "sa", Pod: "p"}
	tr.Connected(1, "p.ns", id, "1.40.0")
	tr.NewInput(1)
	lds := resource.ListenerType
	status := func() TypeStatus { return tr.Snapshot()[0].Types["LDS"] }

	if got := status().Status; got != StatusStale {
		t.Fatalf("before its first evaluation a proxy is STALE, got %s", got)
	}
	tr.Evaluated("p.ns", 1)
	if got := status().Status; got != StatusNotSent {
		t.Fatalf("nothing sent: got %s, want NOT SENT", got)
	}
	tr.Intended("p.ns", map[string]string{lds: "v1"}, map[string]int{lds: 2})
	tr.Request("p.ns", lds, "", "", "") // initial request
	tr.Sent("p.ns", lds, "v1", "n1", 100)
	c.t = c.t.Add(300 * time.Millisecond)
	if s := status(); s.Status != StatusStale || s.StaleFor != "300ms" {
		t.Fatalf("sent, not acked: got %s (%s), want STALE for 300ms", s.Status, s.StaleFor)
	}
	// A stale nonce says nothing.
	tr.Request("p.ns", lds, "n0", "v0", "")
	if got := status().Status; got != StatusStale {
		t.Fatalf("stale nonce changed status to %s", got)
	}
	tr.Request("p.ns", lds, "n1", "v1", "")
	if got := status().Status; got != StatusSynced {
		t.Fatalf("acked: got %s, want SYNCED", got)
	}
	// A new intent makes it STALE until sent and acked again.
	tr.Intended("p.ns", map[string]string{lds: "v2"}, map[string]int{lds: 2})
	if got := status().Status; got != StatusStale {
		t.Fatalf("new intent: got %s, want STALE", got)
	}
	tr.Sent("p.ns", lds, "v2", "n2", 100)
	if nack := tr.Request("p.ns", lds, "n2", "v1", "bad listener"); !nack {
		t.Fatal("a request with error_detail for the sent nonce is a NACK")
	}
	s := status()
	if s.Status != StatusError || s.Error != "bad listener" {
		t.Fatalf("NACK: got %s %q, want ERROR with Envoy's message", s.Status, s.Error)
	}
	if got := tr.RejectedVersion("p.ns", lds); got != "v2" {
		t.Fatalf("RejectedVersion = %q, want v2", got)
	}
	// A new input generation does not hide an ERROR.
	tr.NewInput(2)
	if got := status().Status; got != StatusError {
		t.Fatalf("pending evaluation hid ERROR: %s", got)
	}
	tr.Evaluated("p.ns", 2)
	tr.Intended("p.ns", map[string]string{lds: "v3"}, map[string]int{lds: 2})
	tr.Sent("p.ns", lds, "v3", "n3", 100)
	tr.Request("p.ns", lds, "n3", "v3", "")
	if got := status().Status; got != StatusSynced {
		t.Fatalf("fixed input acked: got %s, want SYNCED", got)
	}
	if tr.RejectedVersion("p.ns", lds) != "" {
		t.Fatal("an ACK must clear the rejection")
	}
	// Delta ACKs carry no version: the sent one is acked.
	tr.Intended("p.ns", map[string]string{lds: "v4"}, map[string]int{lds: 2})
	tr.Sent("p.ns", lds, "v4", "n4", 100)
	tr.Request("p.ns", lds, "n4", "", "")
	if s := status(); s.Status != StatusSynced || s.Acked != "v4" {
		t.Fatalf("delta ACK: got %s acked %q", s.Status, s.Acked)
	}
	// Last stream gone: the proxy is forgotten.
	if !tr.Disconnected(1, "p.ns") || len(tr.Snapshot()) != 0 {
		t.Fatal("proxy still tracked after its last stream closed")
	}
}

func TestInSyncForTypesNothingRefersTo(t *testing.T) {
	for _, tc := range []struct {
		ts   TypeStatus
		want bool
	}{
		{TypeStatus{Status: StatusSynced}, true},
		{TypeStatus{Status: StatusNotSent, Empty: true, Requested: true}, true},
		{TypeStatus{Status: StatusNotSent, Requested: false}, true},
		{TypeStatus{Status: StatusNotSent, Requested: true}, false},
		{TypeStatus{Status: StatusStale}, false},
		{TypeStatus{Status: StatusError}, false},
	} {
		if got := tc.ts.InSync(); got != tc.want {
			t.Errorf("%+v: InSync = %v, want %v", tc.ts, got, tc.want)
		}
	}
}
