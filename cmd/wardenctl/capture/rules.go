package capture

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Rules returns iptables-restore input for the nat table that installs the capture
// chains and the jumps to them from PREROUTING and OUTPUT. The output is deterministic:
// port and CIDR lists are sorted and deduplicated. It declares only Warden's chains, so
// `iptables-restore --noflush` adds them next to existing rules (after Remove), while a
// plain `iptables-restore` replaces the whole nat table, which is fine inside a pod's own
// network namespace.
func Rules(c Config) string {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format+"\n", args...)
	}
	line("*nat")
	for _, ch := range []string{ChainInbound, ChainInRedirect, ChainOutput, ChainRedirect} {
		line(":%s - [0:0]", ch)
	}

	// Inbound: everything arriving over TCP, except excluded ports, goes to the proxy.
	for _, p := range sortedPorts(c.ExcludeInboundPorts) {
		line("-A %s -p tcp -m tcp --dport %d -j RETURN", ChainInbound, p)
	}
	if len(c.InboundPorts) == 0 {
		line("-A %s -p tcp -j %s", ChainInbound, ChainInRedirect)
	} else {
		for _, p := range sortedPorts(c.InboundPorts) {
			line("-A %s -p tcp -m tcp --dport %d -j %s", ChainInbound, p, ChainInRedirect)
		}
	}
	line("-A %s -p tcp -j REDIRECT --to-ports %d", ChainInRedirect, c.InboundPort)

	// Outbound, in order:
	// the proxy's inbound passthrough connections to the local app are left alone;
	line("-A %s -s %s/32 -o lo -j RETURN", ChainOutput, InboundPassthroughSource)
	// the proxy calling this pod's own IP (an app calling its own service) goes through
	// the inbound side, so inbound policy applies;
	// the app talking to itself over lo is left alone;
	// the proxy's own outbound traffic is left alone.
	for _, owner := range owners(c) {
		line("-A %s ! -d 127.0.0.1/32 -o lo -p tcp -m owner %s -j %s", ChainOutput, owner.match, ChainInRedirect)
		line("-A %s -o lo -m owner ! %s -j RETURN", ChainOutput, owner.match)
		line("-A %s -m owner %s -j RETURN", ChainOutput, owner.match)
	}
	line("-A %s -d 127.0.0.1/32 -j RETURN", ChainOutput)
	for _, p := range sortedPorts(c.ExcludeOutboundPorts) {
		line("-A %s -p tcp -m tcp --dport %d -j RETURN", ChainOutput, p)
	}
	for _, cidr := range sortedCIDRs(c.ExcludeOutboundCIDRs) {
		line("-A %s -d %s -j RETURN", ChainOutput, cidr)
	}
	// Inclusions, as istio-iptables' handleOutboundIncludeRules: "*" (nil) redirects
	// everything left, a list only its destinations, an empty list nothing.
	if c.IncludeOutboundCIDRs == nil {
		line("-A %s -j %s", ChainOutput, ChainRedirect)
	} else {
		for _, cidr := range sortedCIDRs(c.IncludeOutboundCIDRs) {
			line("-A %s -d %s -j %s", ChainOutput, cidr, ChainRedirect)
		}
	}
	line("-A %s -p tcp -j REDIRECT --to-ports %d", ChainRedirect, c.OutboundPort)

	line("-A PREROUTING -p tcp -j %s", ChainInbound)
	line("-A OUTPUT -p tcp -j %s", ChainOutput)
	line("COMMIT")
	return b.String()
}

type owner struct{ match string }

// owners returns the iptables owner matches that identify the proxy.
func owners(c Config) []owner {
	out := []owner{{match: fmt.Sprintf("--uid-owner %d", c.ProxyUID)}}
	if c.ProxyGID > 0 {
		out = append(out, owner{match: fmt.Sprintf("--gid-owner %d", c.ProxyGID)})
	}
	return out
}

func sortedPorts(ports []uint32) []uint32 {
	out := slices.Clone(ports)
	slices.Sort(out)
	return slices.Compact(out)
}

func sortedCIDRs(cidrs []netip.Prefix) []string {
	out := make([]string, 0, len(cidrs))
	for _, p := range cidrs {
		out = append(out, p.Masked().String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}
