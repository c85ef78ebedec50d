package translate

import (
	"net/netip"
	"slices"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/wardenmesh/warden/watch"
)

// outboundService is one port of one Service as the outbound side sees it.
type outboundService struct {
	svc     *watch.Service
	port    watch.ServicePort
	fqdn    string
	cluster string
	ip      netip.Addr // ClusterIP; zero when unknown
	proto   protocol
	se      *seHost // a ServiceEntry host and port (serviceentry.go); svc is nil then
}

// outboundSet is everything a sidecar gets for calling other Services, each list
// sorted by name. It depends only on the proxy's namespace and the selector
// DestinationRules that apply to it, so an Index builds it once per such key.
type outboundSet struct {
	listeners []types.Resource
	routes    []types.Resource
	clusters  []types.Resource
	endpoints []types.Resource
	secrets   bool
	diags     []watch.Diagnostic
	key       string // Parts.SharedKey: the outbound view's key in its Index
}

// outboundPorts groups the proxied ports of every Service except headless ones
// (which are reached through passthrough) by port number.
func outboundPorts(in *watch.Input) (byPort map[uint32][]outboundService, ports []uint32, byCluster []outboundService) {
	byPort = map[uint32][]outboundService{}
	for _, svc := range in.Services {
		if svc.ClusterIP == "None" {
			continue
		}
		fqdn := in.Hostname(svc)
		for _, sp := range svc.Ports {
			if !isStream(sp.Protocol) || sp.Port == inboundListenerPort || sp.Port == outboundListenerPort {
				continue
			}
			s := outboundService{
				svc:     svc,
				port:    sp,
				fqdn:    fqdn,
				cluster: outboundCluster(sp.Port, fqdn),
				ip:      clusterIP(svc.ClusterIP),
				proto:   portProtocol(sp.Port, sp.Name, sp.AppProtocol),
			}
			byPort[sp.Port] = append(byPort[sp.Port], s)
			byCluster = append(byCluster, s)
		}
	}
	ports = make([]uint32, 0, len(byPort))
	for p := range byPort {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	slices.SortFunc(byCluster, func(a, b outboundService) int { return strings.Compare(a.cluster, b.cluster) })
	// Two ports of one Service with the same number (TCP and UDP are filtered out
	// above) cannot happen in Kubernetes; drop duplicates defensively.
	byCluster = slices.CompactFunc(byCluster, func(a, b outboundService) bool { return a.cluster == b.cluster })
	return byPort, ports, byCluster
}

// buildOutbound assembles a proxy namespace's outbound view from the parts shared by
// all namespaces: listeners, and clusters keyed by the DestinationRule that applies.
func (x *Index) buildOutbound(proxyNS string, labels map[string]string) *outboundSet {
	shared := x.sharedOutbound()
	set := &outboundSet{
		listeners: shared.listeners,
		secrets:   shared.secrets,
		diags:     slices.Clone(shared.diags),
	}
	b := newBuilder(x)
	// x.services is sorted by cluster name, so clusters and endpoints come out sorted.
	var clusters []types.Resource
	for _, s := range x.services {
		var e *clusterEntry
		if s.se != nil {
			e = x.serviceEntryCluster(s, proxyNS, x.dr.lookup(proxyNS, labels, s.se.cfg.Namespace, s.fqdn))
		} else {
			e = x.serviceCluster(s, x.dr.lookup(proxyNS, labels, s.svc.Namespace, s.fqdn))
		}
		clusters = append(clusters, e.cluster...)
		set.endpoints = append(set.endpoints, e.endpoints...)
		set.diags = append(set.diags, e.diags...)
		set.secrets = set.secrets || e.secrets
	}
	set.clusters = mergeByName(shared.clusters, clusters)
	for _, port := range x.ports {
		var vhosts []*route.VirtualHost
		hasHTTP := false // the shared listener refers to route "<port>" for every namespace
		for _, s := range x.byPort[port] {
			hasHTTP = hasHTTP || s.proto != protoTCP
			if s.proto == protoTCP || (s.se != nil && !x.seVisibleTo(s.se.cfg, proxyNS)) {
				continue
			}
			vh := x.virtualHost(s, s.se == nil && s.svc.Namespace == proxyNS)
			if vh.err != nil {
				set.diags = append(set.diags, translationError("virtual host "+s.cluster, vh.err))
				continue
			}
			vhosts = append(vhosts, vh.vh)
		}
		if hasHTTP {
			set.routes = append(set.routes, b.outboundRoute(port, vhosts))
		}
	}
	set.diags = append(set.diags, b.diags...)
	set.routes = sortedByName(validatedRoutes(&set.diags, set.routes))
	return set
}

// sharedOutbound is the part of the outbound view no proxy namespace changes:
// virtualOutbound, the per-port listeners, PassthroughCluster and BlackHoleCluster.
func (x *Index) sharedOutbound() *outboundSet {
	x.sharedOnce.Do(func() {
		b := newBuilder(x)
		set := &outboundSet{}
		set.listeners = append(set.listeners, b.outboundListener())
		for _, port := range x.ports {
			set.listeners = append(set.listeners, b.portListener(port, x.byPort[port]))
		}
		set.clusters = append(set.clusters, b.originalDstCluster(PassthroughCluster), b.blackHoleCluster(BlackHoleCluster))
		set.diags = append(b.diags, x.seDiags...)
		if b.err != nil {
			set.diags = append(set.diags, translationError("outbound listeners", b.err))
			set.listeners, set.clusters = nil, nil
		}
		set.listeners = sortedByName(validated(&set.diags, set.listeners))
		set.clusters = sortedByName(validated(&set.diags, set.clusters))
		x.shared = set
	})
	return x.shared
}

// clusterEntry is a built Service cluster with its endpoints: the same for every
// proxy that resolves the same DestinationRule for the Service.
type clusterEntry struct {
	cluster   []types.Resource
	endpoints []types.Resource
	diags     []watch.Diagnostic
	secrets   bool
}

type clusterKey struct {
	name string
	dr   *drRule
}

func (x *Index) serviceCluster(s outboundService, dr *drRule) *clusterEntry {
	return cached(&x.mu, x.clusters, clusterKey{s.cluster, dr}, func() *clusterEntry {
		b := newBuilder(x)
		e := &clusterEntry{}
		sec := b.clusterSecurity(s.svc, s.port, s.fqdn, s.proto != protoTCP, dr)
		if sec.blocked {
			e.cluster = []types.Resource{b.blackHoleCluster(s.cluster)}
		} else {
			c := b.edsCluster(s.cluster)
			c.TransportSocket = sec.socket
			c.TransportSocketMatches = sec.matches
			c.TypedExtensionProtocolOptions = b.upstreamHTTPOptions(s.proto)
			e.cluster = []types.Resource{c}
			e.endpoints = []types.Resource{b.loadAssignment(s.cluster, s.svc, s.port, sec.autoMTLS)}
		}
		e.diags, e.secrets = b.diags, b.secrets
		if b.err != nil {
			e.diags = append(e.diags, translationError("cluster "+s.cluster, b.err))
			e.cluster, e.endpoints = nil, nil
		}
		e.cluster = validated(&e.diags, e.cluster)
		e.endpoints = validated(&e.diags, e.endpoints)
		return e
	})
}

type vhostKey struct {
	cluster string
	local   bool
}

type vhostEntry struct {
	vh  *route.VirtualHost
	err error // validation error
}

// virtualHost is the validated virtual host of an HTTP Service port, as seen from
// inside (local) or outside its namespace.
func (x *Index) virtualHost(s outboundService, local bool) *vhostEntry {
	return cached(&x.mu, x.vhosts, vhostKey{s.cluster, local}, func() *vhostEntry {
		var vh *route.VirtualHost
		if s.se != nil {
			vh = serviceEntryVirtualHost(s)
		} else {
			vh = serviceVirtualHost(s, local)
		}
		return &vhostEntry{vh: vh, err: vh.ValidateAll()}
	})
}
