// Package capture builds and installs the iptables rules that steer a pod's TCP traffic
// through its Envoy sidecar, in the style of Istio's istio-iptables: inbound connections
// are redirected to the proxy's inbound listener, outbound connections to its outbound
// listener, and the proxy's own traffic (by uid and gid) is left alone.
//
// The same rules serve the e2e pods (network namespaces) and the Kubernetes init
// container. Only IPv4 is captured.
package capture

import "net/netip"

// Chain names in the nat table. They are all shorter than iptables' 28-character limit.
const (
	ChainInbound    = "WARDEN_INBOUND"
	ChainInRedirect = "WARDEN_IN_REDIRECT"
	ChainOutput     = "WARDEN_OUTPUT"
	ChainRedirect   = "WARDEN_REDIRECT"
)

// InboundPassthroughSource is the loopback address the proxy may bind when it connects to
// the local application for inbound traffic. Connections from it over lo are never
// captured, so the proxy can reach the pod's own IP without looping back into itself.
const InboundPassthroughSource = "127.0.0.6"

// Config says what to capture and where to send it.
type Config struct {
	// InboundPort is the proxy's inbound listener (virtualInbound).
	InboundPort uint32
	// OutboundPort is the proxy's outbound listener (virtualOutbound).
	OutboundPort uint32
	// ProxyUID is the uid the proxy runs as; its traffic is not captured. Must not be 0.
	ProxyUID int
	// ProxyGID is the gid the proxy runs as; its traffic is not captured. 0 disables the
	// gid rules (the root group is never the proxy's own).
	ProxyGID int
	// InboundPorts lists the destination ports captured inbound; empty means all ports
	// ("*" on the command line).
	InboundPorts []uint32
	// ExcludeInboundPorts are never captured inbound (admin, health, metrics).
	ExcludeInboundPorts []uint32
	// ExcludeOutboundPorts are never captured outbound (the control plane's xDS port).
	ExcludeOutboundPorts []uint32
	// ExcludeOutboundCIDRs are destinations never captured outbound.
	ExcludeOutboundCIDRs []netip.Prefix
	// IncludeOutboundCIDRs limits outbound capture to these destinations (after the
	// exclusions). nil captures every destination ("*" on the command line); an empty
	// non-nil list captures none (Istio's includeOutboundIPRanges "").
	IncludeOutboundCIDRs []netip.Prefix
}

// DefaultConfig returns the configuration Warden ships: Istio's ports and proxy uid.
func DefaultConfig() Config {
	return Config{
		InboundPort:          15006,
		OutboundPort:         15001,
		ProxyUID:             1337,
		ProxyGID:             1337,
		ExcludeInboundPorts:  []uint32{15000, 15020, 15021, 15090},
		ExcludeOutboundPorts: []uint32{15012},
	}
}
