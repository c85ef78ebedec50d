package capture

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPrintCommand(t *testing.T) {
	var out bytes.Buffer
	cmd := NewCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"print", "--inbound-ports", "80, 8080", "--proxy-uid", "1500", "--proxy-gid", "0",
		"--exclude-outbound-ports", "15012,2379", "--exclude-outbound-cidrs", "192.0.2.0/24"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("print: %v", err)
	}
	want := DefaultConfig()
	want.InboundPorts = []uint32{80, 8080}
	want.ProxyUID = 1500
	want.ProxyGID = 0
	want.ExcludeOutboundPorts = []uint32{15012, 2379}
	want.ExcludeOutboundCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	if diff := cmp.Diff(Rules(want), out.String()); diff != "" {
		t.Errorf("print output (-want +got):\n%s", diff)
	}
}

// The include list as the injector passes Istio's traffic.sidecar.istio.io/includeOutboundIPRanges.
func TestPrintCommandIncludeOutbound(t *testing.T) {
	for arg, want := range map[string][]netip.Prefix{
		"*":                        nil,
		"":                         {},
		"10.0.0.0/8, 192.0.2.0/24": {netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.0/24")},
	} {
		var out bytes.Buffer
		cmd := NewCommand()
		cmd.SetOut(&out)
		cmd.SetArgs([]string{"print", "--include-outbound-cidrs=" + arg})
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%q: %v", arg, err)
		}
		c := DefaultConfig()
		c.IncludeOutboundCIDRs = want
		if diff := cmp.Diff(Rules(c), out.String()); diff != "" {
			t.Errorf("%q (-want +got):\n%s", arg, diff)
		}
	}
}

func TestPrintCommandRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"print", "--inbound-ports", "http"},
		{"print", "--inbound-ports", ""},
		{"print", "--exclude-outbound-cidrs", "10.0.0.1"},
		{"print", "--exclude-inbound-ports", "0"},
		{"print", "--proxy-uid", "0"},
		{"print", "--include-outbound-cidrs", "10.0.0.0/8,nope"},
	} {
		cmd := NewCommand()
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(args)
		if err := cmd.Execute(); err == nil {
			t.Errorf("%v: want an error", args)
		}
	}
}
