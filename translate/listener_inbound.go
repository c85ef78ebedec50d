package translate

import (
	"strconv"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	origdst "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
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
		// tls_inspector waits for the client's first bytes. A client that stays silent
		// (server-first protocols such as MySQL) is treated as plaintext after this.
		ContinueOnListenerFiltersTimeout: true,
		ListenerFiltersTimeout:           duration(connectTimeout),
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

// portChains are the chains of one target port for mode.
func (b *builder) portChains(p inboundPort, mode Mode) []*listener.FilterChain {
	name := "0.0.0.0_" + strconv.FormatUint(uint64(p.port), 10)
	port := wrapperspb.UInt32(p.port)
	cluster := inboundCluster(p.port)
	if p.passthrough {
		cluster = InboundPassthroughCluster
	}
	filters := func(mtls bool) []*listener.Filter {
		if p.http && !p.passthrough {
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
			out = append(out, b.staticCluster(inboundCluster(p.port), "127.0.0.1", p.port))
		}
	}
	return out
}
