package translate

import (
	"slices"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	filterstate "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/set_filter_state/v3"
	httpinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	setfilterstate "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/set_filter_state/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	outboundListenerName = "virtualOutbound"
	outboundListenerPort = 15001
)

// virtualOutbound receives every captured outbound connection and hands it to the
// listener of its original destination port; connections to ports no Service uses go
// to their original destination.
func (b *builder) outboundListener() *listener.Listener {
	return &listener.Listener{
		Name:             outboundListenerName,
		Address:          socketAddress("0.0.0.0", outboundListenerPort),
		TrafficDirection: core.TrafficDirection_OUTBOUND,
		UseOriginalDst:   boolValue(true),
		FilterChains: []*listener.FilterChain{{
			// A connection addressed to 15001 itself would loop.
			Name:             outboundListenerName + "-blackhole",
			FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(outboundListenerPort)},
			Filters:          []*listener.Filter{b.tcpProxy(BlackHoleCluster, BlackHoleCluster)},
		}},
		DefaultFilterChain: &listener.FilterChain{
			Name:    "PassthroughFilterChain",
			Filters: []*listener.Filter{b.tcpProxy(b.unknownDestinationCluster(), b.unknownDestinationCluster())},
		},
	}
}

// portListener is 0.0.0.0_<port>, reached only through virtualOutbound. HTTP Services
// share one HCM routed by Host (RDS "<port>"); a TCP Service is matched by its
// ClusterIP; an undeclared (auto) Service gets both, split by http_inspector: HTTP to
// the HCM, anything else to its cluster over tcp_proxy. Without a ClusterIP a TCP or
// auto Service can only be told apart by its port: it gets the port when it is the
// only one there, else its traffic is passed through to the original destination
// (without mesh mTLS) and a warning says so.
func (b *builder) portListener(port uint32, svcs []outboundService) *listener.Listener {
	p := strconv.FormatUint(uint64(port), 10)
	name := "0.0.0.0_" + p
	l := &listener.Listener{
		Name:             name,
		Address:          socketAddress("0.0.0.0", port),
		TrafficDirection: core.TrafficDirection_OUTBOUND,
		BindToPort:       boolValue(false),
	}
	hcmFilter := func() []*listener.Filter {
		return []*listener.Filter{b.httpConnectionManager(&hcm.HttpConnectionManager{
			StatPrefix: "outbound_" + name,
			RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
				ConfigSource: adsSource(), RouteConfigName: p,
			}},
		})}
	}
	var httpCount, autoCount int
	var ipless []outboundService
	for _, s := range svcs {
		if s.proto == protoAuto {
			autoCount++
		}
		switch {
		case s.proto.http():
			httpCount++
		case s.se != nil && len(b.serviceEntryChains(s)) > 0: // serviceentry.go
			l.FilterChains = append(l.FilterChains, b.serviceEntryChains(s)...)
		case s.ip.IsValid():
			prefix := []*core.CidrRange{{AddressPrefix: s.ip.String(), PrefixLen: wrapperspb.UInt32(uint32(s.ip.BitLen()))}}
			if s.proto == protoAuto {
				l.FilterChains = append(l.FilterChains, &listener.FilterChain{
					Name:             s.cluster + "-http",
					FilterChainMatch: &listener.FilterChainMatch{PrefixRanges: prefix, ApplicationProtocols: plaintextHTTPALPNs},
					Filters:          hcmFilter(),
				})
			}
			l.FilterChains = append(l.FilterChains, &listener.FilterChain{
				Name:             s.cluster,
				FilterChainMatch: &listener.FilterChainMatch{PrefixRanges: prefix},
				Filters:          b.outboundTCP(s),
			})
		default:
			ipless = append(ipless, s)
		}
	}
	if autoCount > 0 {
		// Only the port's own connections reach this listener; detection as on the
		// inbound side, continuing as TCP when the client stays silent. It runs for
		// every Service on the port: a listener filter cannot be disabled per VIP.
		l.ListenerFilters = []*listener.ListenerFilter{{
			Name:       wellknown.HttpInspector,
			ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: b.any(&httpinspector.HttpInspector{})},
		}}
		l.ListenerFiltersTimeout = duration(b.detectionTimeout())
		l.ContinueOnListenerFiltersTimeout = true
	}
	if httpCount == 0 && slices.ContainsFunc(ipless, func(s outboundService) bool { return s.proto == protoAuto }) {
		// HTTP to an IP-less undeclared Service is routed by Host like any HTTP.
		l.FilterChains = append(l.FilterChains, &listener.FilterChain{
			Name:             name + "-http",
			FilterChainMatch: &listener.FilterChainMatch{ApplicationProtocols: plaintextHTTPALPNs},
			Filters:          hcmFilter(),
		})
	}
	fallback := &listener.FilterChain{Name: name + "-passthrough"}
	switch {
	case httpCount > 0:
		fallback.Name = name + "-http"
		fallback.Filters = hcmFilter()
	case len(ipless) == 1:
		fallback.Name = ipless[0].cluster
		fallback.Filters = b.outboundTCP(ipless[0])
		ipless = nil
	default:
		fallback.Filters = []*listener.Filter{b.tcpProxy(b.unknownDestinationCluster(), b.unknownDestinationCluster())}
	}
	for _, s := range ipless {
		if s.se != nil {
			b.diag(severityWarning, &s.se.cfg.Meta, "spec.addresses",
				"TCP port "+p+" is shared with other destinations and this ServiceEntry has no addresses: "+s.se.host+" is not reachable on it")
			continue
		}
		what, traffic := "TCP port ", "its traffic"
		if s.proto == protoAuto {
			what, traffic = "undeclared-protocol port ", "its non-HTTP traffic"
		}
		b.diag(severityWarning, &s.svc.Meta, "spec.clusterIP",
			what+p+" is shared with other Services and this Service has no ClusterIP: "+traffic+" is passed through to the original destination without mesh mTLS")
	}
	l.FilterChains = append(l.FilterChains, fallback)
	b.finishPortListener(l, svcs)
	return l
}

// outboundTCP forwards a connection to s's cluster. On an auto port the cluster offers
// the HTTP mesh ALPN (its HCM traffic); a TCP connection overrides it with the TCP
// one so the server's sidecar picks its TCP chain, as Istio's istio.alpn filter does.
func (b *builder) outboundTCP(s outboundService) []*listener.Filter {
	proxy := b.tcpProxy(s.cluster, s.cluster)
	if s.proto != protoAuto {
		return []*listener.Filter{proxy}
	}
	alpn := &setfilterstate.Config{OnNewConnection: []*filterstate.FilterStateValue{{
		Key: &filterstate.FilterStateValue_ObjectKey{ObjectKey: "envoy.network.application_protocols"},
		Value: &filterstate.FilterStateValue_FormatString{FormatString: &core.SubstitutionFormatString{
			Format: &core.SubstitutionFormatString_TextFormatSource{TextFormatSource: &core.DataSource{
				Specifier: &core.DataSource_InlineString{InlineString: strings.Join(meshClientALPN(false), ",")},
			}},
		}},
		SharedWithUpstream: filterstate.FilterStateValue_ONCE,
	}}}
	return []*listener.Filter{{
		Name:       "envoy.filters.network.set_filter_state",
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: b.any(alpn)},
	}, proxy}
}
