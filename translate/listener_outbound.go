package translate

import (
	"strconv"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
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
// ClusterIP. Without a ClusterIP a TCP Service can only be told apart by its port: it
// gets the port when it is the only Service there, else its traffic is passed through
// to the original destination (without mesh mTLS) and a warning says so.
func (b *builder) portListener(port uint32, svcs []outboundService) *listener.Listener {
	p := strconv.FormatUint(uint64(port), 10)
	name := "0.0.0.0_" + p
	l := &listener.Listener{
		Name:             name,
		Address:          socketAddress("0.0.0.0", port),
		TrafficDirection: core.TrafficDirection_OUTBOUND,
		BindToPort:       boolValue(false),
	}
	var httpCount int
	var ipless []outboundService
	for _, s := range svcs {
		switch {
		case s.http:
			httpCount++
		case s.se != nil && len(b.serviceEntryChains(s)) > 0: // serviceentry.go
			l.FilterChains = append(l.FilterChains, b.serviceEntryChains(s)...)
		case s.ip.IsValid():
			l.FilterChains = append(l.FilterChains, &listener.FilterChain{
				Name: s.cluster,
				FilterChainMatch: &listener.FilterChainMatch{PrefixRanges: []*core.CidrRange{{
					AddressPrefix: s.ip.String(),
					PrefixLen:     wrapperspb.UInt32(uint32(s.ip.BitLen())),
				}}},
				Filters: []*listener.Filter{b.tcpProxy(s.cluster, s.cluster)},
			})
		default:
			ipless = append(ipless, s)
		}
	}
	fallback := &listener.FilterChain{Name: name + "-passthrough"}
	switch {
	case httpCount > 0:
		fallback.Name = name + "-http"
		fallback.Filters = []*listener.Filter{b.httpConnectionManager(&hcm.HttpConnectionManager{
			StatPrefix: "outbound_" + name,
			RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
				ConfigSource: adsSource(), RouteConfigName: p,
			}},
		})}
	case len(ipless) == 1:
		fallback.Name = ipless[0].cluster
		fallback.Filters = []*listener.Filter{b.tcpProxy(ipless[0].cluster, ipless[0].cluster)}
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
		b.diag(severityWarning, &s.svc.Meta, "spec.clusterIP",
			"TCP port "+p+" is shared with other Services and this Service has no ClusterIP: its traffic is passed through to the original destination without mesh mTLS")
	}
	l.FilterChains = append(l.FilterChains, fallback)
	b.finishPortListener(l, svcs)
	return l
}
