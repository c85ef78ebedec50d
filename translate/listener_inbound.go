package translate

import (
	"strconv"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httpinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	origdst "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	inboundListenerName = "virtualInbound"
	inboundListenerPort = 15006
	// InboundPassthroughCluster forwards to the original destination of a connection
	// to a port the workload does not declare.
	InboundPassthroughCluster = "InboundPassthroughCluster"
)

func inboundCluster(port uint32) string {
	return "inbound|" + strconv.FormatUint(uint64(port), 10) + "||"
}

// inboundListener is virtualInbound: every captured inbound connection, matched per
// original destination port, with the chains the port's PeerAuthentication mode asks
// for. A STRICT port has no plaintext chain, so plaintext connections are closed.
func (b *builder) inboundListener(ports []inboundPort, mtls MTLS) *listener.Listener {
	l := &listener.Listener{
		Name:             inboundListenerName,
		Address:          socketAddress("0.0.0.0", inboundListenerPort),
		TrafficDirection: core.TrafficDirection_INBOUND,
		ListenerFilters: []*listener.ListenerFilter{
			{
				Name:       wellknown.OriginalDestination,
				ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: b.any(&origdst.OriginalDst{})},
			},
			{
				Name:       wellknown.TlsInspector,
				ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: b.any(&tlsinspector.TlsInspector{})},
			},
		},
		// tls_inspector (and http_inspector on undeclared ports) waits for the client's
		// first bytes. A client that stays silent (server-first protocols such as
		// MySQL) is treated as plaintext TCP after this.
		ContinueOnListenerFiltersTimeout: true,
		ListenerFiltersTimeout:           duration(b.detectionTimeout()),
	}
	if f := b.httpInspector(autoPorts(ports)); f != nil {
		l.ListenerFilters = append(l.ListenerFilters, f)
	}
	// A connection addressed to 15006 itself would loop.
	l.FilterChains = append(l.FilterChains, &listener.FilterChain{
		Name:             inboundListenerName + "-blackhole",
		FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(inboundListenerPort)},
		Filters:          []*listener.Filter{b.tcpProxy(BlackHoleCluster, BlackHoleCluster)},
	})
	for _, p := range ports {
		l.FilterChains = append(l.FilterChains, b.portChains(p, mtls.PortMode(p.port))...)
	}
	l.FilterChains = append(l.FilterChains, b.catchAllChains(mtls.Mode)...)
	return l
}

// Application protocols that split an undeclared port's connections into an HTTP and
// a TCP chain, as Istio does: a mesh client offers istio-http/* or istio-h2 for HTTP
// over mTLS and istio-peer-exchange/istio for TCP; http_inspector reports http/1.1 or
// h2c for plaintext HTTP.
var (
	mtlsHTTPALPNs      = []string{"istio-http/1.0", "istio-http/1.1", "istio-h2"}
	mtlsTCPALPNs       = []string{"istio-peer-exchange", "istio"}
	plaintextHTTPALPNs = []string{"http/1.1", "h2c"} // HTTP/1.0 is TCP, as Istio without PILOT_HTTP10
)

// autoPorts are the ports whose protocol is detected per connection.
func autoPorts(ports []inboundPort) []uint32 {
	var out []uint32
	for _, p := range ports {
		if p.proto == protoAuto && !p.passthrough {
			out = append(out, p.port)
		}
	}
	return out
}

// httpInspector detects plaintext HTTP on ports (nil without any), and is disabled on
// every other port so that a declared server-first TCP port does not wait for it.
func (b *builder) httpInspector(ports []uint32) *listener.ListenerFilter {
	if len(ports) == 0 {
		return nil
	}
	var rules []*listener.ListenerFilterChainMatchPredicate
	for _, p := range ports {
		rules = append(rules, &listener.ListenerFilterChainMatchPredicate{
			Rule: &listener.ListenerFilterChainMatchPredicate_DestinationPortRange{
				DestinationPortRange: &typev3.Int32Range{Start: int32(p), End: int32(p) + 1},
			},
		})
	}
	enabled := rules[0]
	if len(rules) > 1 {
		enabled = &listener.ListenerFilterChainMatchPredicate{
			Rule: &listener.ListenerFilterChainMatchPredicate_OrMatch{
				OrMatch: &listener.ListenerFilterChainMatchPredicate_MatchSet{Rules: rules},
			},
		}
	}
	return &listener.ListenerFilter{
		Name:       wellknown.HttpInspector,
		ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: b.any(&httpinspector.HttpInspector{})},
		FilterDisabled: &listener.ListenerFilterChainMatchPredicate{
			Rule: &listener.ListenerFilterChainMatchPredicate_NotMatch{NotMatch: enabled},
		},
	}
}

// autoChains are the chains of an undeclared port: HTTP (HCM with HTTP RBAC) for
// connections the client's sidecar or http_inspector says are HTTP, TCP (tcp_proxy
// with network RBAC, which drops HTTP-only rule fields as Istio does) for the rest.
func (b *builder) autoChains(p inboundPort, mode Mode) []*listener.FilterChain {
	name := "0.0.0.0_" + strconv.FormatUint(uint64(p.port), 10)
	port := wrapperspb.UInt32(p.port)
	tcp := func() []*listener.Filter {
		return b.withAuthz("inbound_"+name, []*listener.Filter{b.tcpProxy("inbound_"+name, inboundCluster(p.port))})
	}
	match := func(transport string, alpns []string) *listener.FilterChainMatch {
		return &listener.FilterChainMatch{DestinationPort: port, TransportProtocol: transport, ApplicationProtocols: alpns}
	}
	mtlsHTTP := &listener.FilterChain{
		Name: name + "-http", FilterChainMatch: match("tls", mtlsHTTPALPNs),
		TransportSocket: b.inboundMeshTLS(), Filters: []*listener.Filter{b.inboundHTTP(p.port, true)},
	}
	plainHTTP := &listener.FilterChain{
		Name: name + "-plaintext-http", FilterChainMatch: match("raw_buffer", plaintextHTTPALPNs),
		Filters: []*listener.Filter{b.inboundHTTP(p.port, false)},
	}
	switch mode {
	case ModeStrict:
		return []*listener.FilterChain{mtlsHTTP, {
			Name: name + "-tcp", FilterChainMatch: match("tls", nil),
			TransportSocket: b.inboundMeshTLS(), Filters: tcp(),
		}}
	case ModeDisable:
		return []*listener.FilterChain{plainHTTP, {
			Name: name + "-tcp", FilterChainMatch: match("", nil), Filters: tcp(),
		}}
	default:
		return []*listener.FilterChain{
			mtlsHTTP,
			{
				Name: name + "-tcp", FilterChainMatch: match("tls", mtlsTCPALPNs),
				TransportSocket: b.inboundMeshTLS(), Filters: tcp(),
			},
			plainHTTP,
			{Name: name + "-plaintext-tcp", FilterChainMatch: match("raw_buffer", nil), Filters: tcp()},
			// TLS that is not mesh mTLS was started by the caller's application:
			// pass it to the application untouched.
			{Name: name + "-app-tls", FilterChainMatch: match("tls", nil), Filters: tcp()},
		}
	}
}

// portChains are the chains of one target port for mode.
func (b *builder) portChains(p inboundPort, mode Mode) []*listener.FilterChain {
	if p.proto == protoAuto && !p.passthrough {
		return b.autoChains(p, mode)
	}
	name := "0.0.0.0_" + strconv.FormatUint(uint64(p.port), 10)
	port := wrapperspb.UInt32(p.port)
	cluster := inboundCluster(p.port)
	if p.passthrough {
		cluster = InboundPassthroughCluster
	}
	filters := func(mtls bool) []*listener.Filter {
		if p.proto.http() && !p.passthrough {
			return []*listener.Filter{b.inboundHTTP(p.port, mtls)}
		}
		return b.withAuthz("inbound_"+name, []*listener.Filter{b.tcpProxy("inbound_"+name, cluster)})
	}
	switch mode {
	case ModeStrict:
		return []*listener.FilterChain{{
			Name:             name,
			FilterChainMatch: &listener.FilterChainMatch{DestinationPort: port, TransportProtocol: "tls"},
			TransportSocket:  b.inboundMeshTLS(),
			Filters:          filters(true),
		}}
	case ModeDisable:
		return []*listener.FilterChain{{
			Name:             name,
			FilterChainMatch: &listener.FilterChainMatch{DestinationPort: port},
			Filters:          filters(false),
		}}
	default:
		return []*listener.FilterChain{
			{
				Name: name,
				FilterChainMatch: &listener.FilterChainMatch{
					DestinationPort: port, TransportProtocol: "tls", ApplicationProtocols: meshServerALPNs,
				},
				TransportSocket: b.inboundMeshTLS(),
				Filters:         filters(true),
			},
			{
				Name:             name + "-plaintext",
				FilterChainMatch: &listener.FilterChainMatch{DestinationPort: port, TransportProtocol: "raw_buffer"},
				Filters:          filters(false),
			},
			{
				// TLS that is not mesh mTLS was started by the caller's application:
				// pass it to the application untouched.
				Name:             name + "-app-tls",
				FilterChainMatch: &listener.FilterChainMatch{DestinationPort: port, TransportProtocol: "tls"},
				Filters:          b.withAuthz("inbound_"+name, []*listener.Filter{b.tcpProxy("inbound_"+name, cluster)}),
			},
		}
	}
}

// catchAllChains take connections to ports nothing else matched, to their original
// destination. A STRICT workload accepts only mTLS there too, as in Istio.
func (b *builder) catchAllChains(mode Mode) []*listener.FilterChain {
	passthrough := func() []*listener.Filter {
		return b.withAuthz(InboundPassthroughCluster, []*listener.Filter{b.tcpProxy(InboundPassthroughCluster, InboundPassthroughCluster)})
	}
	switch mode {
	case ModeStrict:
		return []*listener.FilterChain{{
			Name:             inboundListenerName + "-mtls",
			FilterChainMatch: &listener.FilterChainMatch{TransportProtocol: "tls"},
			TransportSocket:  b.inboundMeshTLS(),
			Filters:          passthrough(),
		}}
	case ModeDisable:
		return []*listener.FilterChain{{
			Name:    inboundListenerName,
			Filters: passthrough(),
		}}
	default:
		return []*listener.FilterChain{
			{
				Name:             inboundListenerName + "-mtls",
				FilterChainMatch: &listener.FilterChainMatch{TransportProtocol: "tls", ApplicationProtocols: meshServerALPNs},
				TransportSocket:  b.inboundMeshTLS(),
				Filters:          passthrough(),
			},
			{
				Name:             inboundListenerName + "-plaintext",
				FilterChainMatch: &listener.FilterChainMatch{TransportProtocol: "raw_buffer"},
				Filters:          passthrough(),
			},
			{
				Name:             inboundListenerName + "-app-tls",
				FilterChainMatch: &listener.FilterChainMatch{TransportProtocol: "tls"},
				Filters:          passthrough(),
			},
		}
	}
}

// inboundClusters are inbound|<port>|| for every declared port (to the application on
// loopback; the capture rules exclude Envoy's own uid, so this does not loop) and
// InboundPassthroughCluster.
func (b *builder) inboundClusters(ports []inboundPort) []*cluster.Cluster {
	out := []*cluster.Cluster{b.originalDstCluster(InboundPassthroughCluster)}
	for _, p := range ports {
		if !p.passthrough {
			c := b.staticCluster(inboundCluster(p.port), "127.0.0.1", p.port)
			c.TypedExtensionProtocolOptions = b.upstreamHTTPOptions(p.proto)
			out = append(out, c)
		}
	}
	return out
}
