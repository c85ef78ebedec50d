package translate

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/wardenmesh/warden/watch"
)

// A ServiceEntry adds hosts to the registry. Each host and port becomes a cluster
// named as Istio names it, outbound|<port>||<host>, built by resolution:
//
//   - NONE: ORIGINAL_DST, the connection goes where the application sent it;
//   - STATIC: EDS, the entry's endpoints (IPs) or the pods its workloadSelector picks
//     in its namespace;
//   - DNS: STRICT_DNS over the endpoints' addresses, or the host itself without
//     endpoints;
//   - DNS_ROUND_ROBIN: LOGICAL_DNS over the one endpoint, or the host itself.
//
// Listeners: an HTTP port (HTTP, HTTP2, GRPC, GRPC-WEB) adds a virtual host for the
// entry's hosts (and addresses) to route "<port>"; another port gets a filter chain on
// 0.0.0.0_<port> matching the entry's addresses and, for TLS and HTTPS ports, the
// hosts as SNI (tls_inspector). An unset protocol is TCP (protocol detection is for Service ports only).
//
// exportTo (default: the mesh's defaultServiceExportTo, else everywhere) decides who
// sees an entry. Listeners are shared by every namespace, so for a proxy that does not
// see the entry its clusters are replaced by what the outbound traffic policy gives
// unknown destinations: PassthroughCluster's behaviour under ALLOW_ANY, BlackHole under
// REGISTRY_ONLY; its virtual hosts are left out of that proxy's routes.
//
// A host:port a Kubernetes Service (or an older ServiceEntry) already has is skipped
// with a warning.

// seHost is the ServiceEntry part of an outboundService.
type seHost struct {
	cfg  *watch.Config[*networking.ServiceEntry]
	port *networking.ServicePort
	host string
	// addrs are the entry's addresses, as prefixes.
	addrs []netip.Prefix
}

// serviceEntryProto is how a ServiceEntry port is proxied: HTTP through the port's
// HCM, HTTP2/GRPC/GRPC-WEB likewise; anything else, an unset protocol too, as TCP.
func serviceEntryProto(protocol string) protocol {
	switch strings.ToUpper(protocol) {
	case "HTTP":
		return protoHTTP
	case "HTTP2", "GRPC", "GRPC-WEB":
		return protoHTTP2
	}
	return protoTCP
}

// serviceEntryTLS reports whether a ServiceEntry port carries TLS whose SNI names the host.
func serviceEntryTLS(protocol string) bool {
	switch strings.ToUpper(protocol) {
	case "TLS", "HTTPS":
		return true
	}
	return false
}

// addServiceEntries adds the ServiceEntry ports to the Index's outbound view, after
// the Services; entries are taken oldest first.
func (x *Index) addServiceEntries() {
	if len(x.in.ServiceEntries) == 0 {
		return
	}
	taken := map[string]bool{}
	for _, s := range x.services {
		taken[s.cluster] = true
	}
	for _, se := range x.in.ServiceEntries {
		var addrs []netip.Prefix
		for _, a := range se.Spec.GetAddresses() {
			if p, err := netip.ParsePrefix(a); err == nil {
				addrs = append(addrs, p.Masked())
			} else if ip, err := netip.ParseAddr(a); err == nil {
				addrs = append(addrs, netip.PrefixFrom(ip, ip.BitLen()))
			}
		}
		for i, port := range se.Spec.GetPorts() {
			field := "spec.ports[" + strconv.Itoa(i) + "]"
			if strings.EqualFold(port.GetProtocol(), "UDP") {
				x.seDiags = append(x.seDiags, watch.DiagnosticFor(&se.Meta, severityWarning, field+".protocol", "UDP is not proxied: the port is ignored"))
				continue
			}
			if port.GetNumber() == inboundListenerPort || port.GetNumber() == outboundListenerPort {
				x.seDiags = append(x.seDiags, watch.DiagnosticFor(&se.Meta, severityWarning, field+".number", "port is the sidecar's own: ignored"))
				continue
			}
			for _, host := range se.Spec.GetHosts() {
				name := outboundCluster(port.GetNumber(), host)
				if taken[name] {
					x.seDiags = append(x.seDiags, watch.DiagnosticFor(&se.Meta, severityWarning, field,
						host+":"+strconv.FormatUint(uint64(port.GetNumber()), 10)+" is already a Service or an older ServiceEntry: this one is ignored for it"))
					continue
				}
				taken[name] = true
				s := outboundService{
					port:    watch.ServicePort{Name: port.GetName(), Port: port.GetNumber(), Protocol: "TCP"},
					fqdn:    host,
					cluster: name,
					proto:   serviceEntryProto(port.GetProtocol()),
					se:      &seHost{cfg: se, port: port, host: host, addrs: addrs},
				}
				if _, ok := x.byPort[port.GetNumber()]; !ok {
					x.ports = append(x.ports, port.GetNumber())
				}
				x.byPort[port.GetNumber()] = append(x.byPort[port.GetNumber()], s)
				x.services = append(x.services, s)
			}
		}
	}
	slices.Sort(x.ports)
	slices.SortStableFunc(x.services, func(a, b outboundService) int { return strings.Compare(a.cluster, b.cluster) })
}

const meshRegistryOnly = meshv1alpha1.MeshConfig_OutboundTrafficPolicy_REGISTRY_ONLY

// registryOnly reports whether the mesh sends destinations outside the registry to
// BlackHoleCluster (outboundTrafficPolicy REGISTRY_ONLY) instead of passing them through.
func (b *builder) registryOnly() bool {
	p := b.in.Mesh.GetOutboundTrafficPolicy() // nil (ALLOW_ANY) only in an Input not from watch.Build
	return p != nil && p.GetMode() == meshRegistryOnly
}

// unknownDestinationCluster is where traffic to a destination outside the registry goes.
func (b *builder) unknownDestinationCluster() string {
	if b.registryOnly() {
		return BlackHoleCluster
	}
	return PassthroughCluster
}

// blockAllVirtualHost replaces allow_any under REGISTRY_ONLY: unknown hosts get 502, as
// in Istio.
var blockAllVirtualHost = &route.VirtualHost{
	Name:    "block_all",
	Domains: []string{"*"},
	Routes: []*route.Route{{
		Name:   "block_all",
		Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		Action: &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: 502}},
	}},
}

func (b *builder) unknownHostVirtualHost() *route.VirtualHost {
	if b.registryOnly() {
		return blockAllVirtualHost
	}
	return allowAnyVirtualHost
}

// seVisibleTo applies a ServiceEntry's exportTo (or the mesh default) to a namespace.
func (x *Index) seVisibleTo(se *watch.Config[*networking.ServiceEntry], namespace string) bool {
	exports := se.Spec.GetExportTo()
	if len(exports) == 0 {
		exports = x.in.Mesh.GetDefaultServiceExportTo()
	}
	if len(exports) == 0 {
		return true
	}
	for _, e := range exports {
		if e == "*" || e == namespace || (e == "." && se.Namespace == namespace) {
			return true
		}
	}
	return false
}

// serviceEntryChains are the filter chains of a non-HTTP ServiceEntry port on its
// 0.0.0.0_<port> listener; none when it has neither addresses nor TLS.
func (b *builder) serviceEntryChains(s outboundService) []*listener.FilterChain {
	var out []*listener.FilterChain
	if len(s.se.addrs) > 0 {
		m := &listener.FilterChainMatch{}
		for _, p := range s.se.addrs {
			m.PrefixRanges = append(m.PrefixRanges, &core.CidrRange{AddressPrefix: p.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(p.Bits()))})
		}
		if serviceEntryTLS(s.se.port.GetProtocol()) {
			m.ServerNames = []string{s.se.host}
			m.TransportProtocol = "tls"
		}
		out = append(out, &listener.FilterChain{Name: s.cluster, FilterChainMatch: m, Filters: []*listener.Filter{b.tcpProxy(s.cluster, s.cluster)}})
	} else if serviceEntryTLS(s.se.port.GetProtocol()) {
		out = append(out, &listener.FilterChain{
			Name:             s.cluster,
			FilterChainMatch: &listener.FilterChainMatch{ServerNames: []string{s.se.host}, TransportProtocol: "tls"},
			Filters:          []*listener.Filter{b.tcpProxy(s.cluster, s.cluster)},
		})
	}
	return out
}

// finishPortListener drops filter chains whose match repeats an earlier one (Envoy
// refuses such a listener), with a warning on the ServiceEntry, and adds tls_inspector
// when a chain matches on SNI.
func (b *builder) finishPortListener(l *listener.Listener, svcs []outboundService) {
	owner := map[string]*watch.Meta{}
	for _, s := range svcs {
		if s.se != nil {
			owner[s.cluster] = &s.se.cfg.Meta
		}
	}
	var kept []*listener.FilterChain
	sni := false
	for _, c := range l.FilterChains {
		dup := slices.ContainsFunc(kept, func(k *listener.FilterChain) bool {
			return proto.Equal(k.GetFilterChainMatch(), c.GetFilterChainMatch())
		})
		if dup {
			if m := owner[c.GetName()]; m != nil {
				b.diag(severityWarning, m, "spec", "listener "+l.GetName()+" already has a destination with the same addresses and SNI: "+c.GetName()+" is not reachable")
			}
			continue
		}
		sni = sni || len(c.GetFilterChainMatch().GetServerNames()) > 0
		kept = append(kept, c)
	}
	l.FilterChains = kept
	if sni {
		l.ListenerFilters = append(l.ListenerFilters, &listener.ListenerFilter{
			Name:       wellknown.TlsInspector,
			ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: b.any(&tlsinspector.TlsInspector{})},
		})
		l.ContinueOnListenerFiltersTimeout = true
		l.ListenerFiltersTimeout = duration(connectTimeout)
	}
}

// serviceEntryVirtualHost matches the entry's host (and its addresses) on the port.
func serviceEntryVirtualHost(s outboundService) *route.VirtualHost {
	p := strconv.FormatUint(uint64(s.port.Port), 10)
	names := []string{s.se.host}
	for _, a := range s.se.addrs {
		if a.IsSingleIP() {
			ip := a.Addr().String()
			if a.Addr().Is6() {
				ip = "[" + ip + "]"
			}
			names = append(names, ip)
		}
	}
	domains := make([]string, 0, 2*len(names))
	for _, n := range names {
		domains = append(domains, n, n+":"+p)
	}
	return &route.VirtualHost{
		Name:    s.se.host + ":" + p,
		Domains: domains,
		Routes:  []*route.Route{routeToCluster("default", s.cluster)},
	}
}

// serviceEntryCluster builds the cluster (and, for STATIC, its endpoints) of one
// ServiceEntry host and port as seen from proxyNS.
func (x *Index) serviceEntryCluster(s outboundService, proxyNS string, dr *drRule) *clusterEntry {
	if !x.seVisibleTo(s.se.cfg, proxyNS) {
		b := newBuilder(x)
		var c *cluster.Cluster
		if b.registryOnly() {
			c = b.blackHoleCluster(s.cluster)
		} else {
			c = b.originalDstCluster(s.cluster)
		}
		return &clusterEntry{cluster: validated(new([]watch.Diagnostic), []types.Resource{c})}
	}
	return cached(&x.mu, x.clusters, clusterKey{s.cluster, dr}, func() *clusterEntry {
		b := newBuilder(x)
		e := &clusterEntry{}
		sec := b.serviceEntrySecurity(s, dr)
		if sec.blocked {
			e.cluster = []types.Resource{b.blackHoleCluster(s.cluster)}
		} else {
			c, cla := b.serviceEntryClusterOf(s, sec.autoMTLS)
			c.TransportSocket = sec.socket
			c.TransportSocketMatches = sec.matches
			e.cluster = []types.Resource{c}
			if cla != nil {
				e.endpoints = []types.Resource{cla}
			}
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

// serviceEntryClusterOf is the cluster by resolution, and the EDS assignment of a
// STATIC one.
func (b *builder) serviceEntryClusterOf(s outboundService, autoMTLS bool) (*cluster.Cluster, *endpoint.ClusterLoadAssignment) {
	se, port := s.se.cfg.Spec, s.se.port
	switch se.GetResolution() {
	case networking.ServiceEntry_STATIC:
		c := b.edsCluster(s.cluster)
		cla := &endpoint.ClusterLoadAssignment{ClusterName: s.cluster}
		if lbs := b.serviceEntryEndpoints(s, autoMTLS); len(lbs) > 0 {
			cla.Endpoints = []*endpoint.LocalityLbEndpoints{{LbEndpoints: lbs}}
		}
		return c, cla
	case networking.ServiceEntry_DNS, networking.ServiceEntry_DNS_ROUND_ROBIN:
		typ := cluster.Cluster_STRICT_DNS
		if se.GetResolution() == networking.ServiceEntry_DNS_ROUND_ROBIN {
			typ = cluster.Cluster_LOGICAL_DNS
		}
		lbs := b.serviceEntryEndpoints(s, autoMTLS)
		if len(se.GetEndpoints()) == 0 {
			lbs = []*endpoint.LbEndpoint{lbEndpoint(s.se.host, seTargetPort(port), nil)}
		}
		return &cluster.Cluster{
			Name:                 s.cluster,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: typ},
			ConnectTimeout:       duration(connectTimeout),
			LbPolicy:             cluster.Cluster_ROUND_ROBIN,
			DnsLookupFamily:      cluster.Cluster_V4_ONLY,
			RespectDnsTtl:        true,
			LoadAssignment: &endpoint.ClusterLoadAssignment{
				ClusterName: s.cluster,
				Endpoints:   []*endpoint.LocalityLbEndpoints{{LbEndpoints: lbs}},
			},
		}, nil
	default: // NONE
		return b.originalDstCluster(s.cluster), nil
	}
}

// seTargetPort is where a ServiceEntry port's traffic goes: targetPort, else its number.
func seTargetPort(p *networking.ServicePort) uint32 {
	if t := p.GetTargetPort(); t != 0 {
		return t
	}
	return p.GetNumber()
}

// serviceEntryEndpoints are the entry's endpoints for the port, sorted by address, or
// the pods its workloadSelector picks. With autoMTLS, an endpoint is marked for mesh
// mTLS when its labels say security.istio.io/tlsMode: istio, or its pod runs a sidecar.
func (b *builder) serviceEntryEndpoints(s outboundService, autoMTLS bool) []*endpoint.LbEndpoint {
	se, port := s.se.cfg.Spec, s.se.port
	var lbs []*endpoint.LbEndpoint
	for _, ep := range se.GetEndpoints() {
		n := seTargetPort(port)
		if p, ok := ep.GetPorts()[port.GetName()]; ok {
			n = p
		}
		var md *core.Metadata
		if autoMTLS && ep.GetLabels()["security.istio.io/tlsMode"] == tlsModeIstio {
			md = istioTLSMetadata()
		}
		lbs = append(lbs, lbEndpoint(ep.GetAddress(), n, md))
	}
	if sel := se.GetWorkloadSelector(); sel != nil {
		for _, w := range b.in.Workloads {
			if w.Namespace != s.se.cfg.Namespace || w.IP == "" || !labelsMatch(sel.GetLabels(), w.PodLabels) {
				continue
			}
			ep := watch.Endpoint{Workload: w, IP: w.IP, Port: seTargetPort(port)}
			var md *core.Metadata
			if autoMTLS && b.acceptsMeshTLS(ep) {
				md = istioTLSMetadata()
			}
			lbs = append(lbs, lbEndpoint(ep.IP, ep.Port, md))
		}
	}
	slices.SortStableFunc(lbs, func(a, c *endpoint.LbEndpoint) int {
		return cmp.Or(
			cmp.Compare(a.GetEndpoint().GetAddress().GetSocketAddress().GetAddress(), c.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()),
			cmp.Compare(a.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(), c.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()))
	})
	return lbs
}

func labelsMatch(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// serviceEntrySecurity is the DestinationRule's client TLS for the port; without one,
// plaintext to MESH_EXTERNAL and auto mTLS (per endpoint) to MESH_INTERNAL.
func (b *builder) serviceEntrySecurity(s outboundService, dr *drRule) clusterSecurity {
	se := s.se.cfg.Spec
	sans := typedSANs(se.GetSubjectAltNames())
	tls, field := dr.tlsFor(s.port.Port)
	if tls == nil {
		if se.GetLocation() != networking.ServiceEntry_MESH_INTERNAL || !b.autoMTLSEnabled() {
			return clusterSecurity{}
		}
		mesh := b.upstreamMeshTLS(meshSNI(s.port.Port, s.se.host), sans, s.proto.http())
		return clusterSecurity{matches: b.autoMTLSMatches(mesh), autoMTLS: true}
	}
	switch tls.GetMode() {
	case networking.ClientTLSSettings_DISABLE:
		return clusterSecurity{}
	case networking.ClientTLSSettings_ISTIO_MUTUAL:
		sni := tls.GetSni()
		if sni == "" {
			sni = meshSNI(s.port.Port, s.se.host)
		}
		if len(tls.GetSubjectAltNames()) > 0 {
			sans = typedSANs(tls.GetSubjectAltNames())
		}
		return clusterSecurity{socket: b.upstreamMeshTLS(sni, sans, s.proto.http())}
	default:
		host := s.se.host
		if strings.HasPrefix(host, "*") && tls.GetSni() == "" {
			b.diag(severityWarning, &dr.cfg.Meta, field+".sni",
				"TLS origination to the wildcard host "+host+" needs sni: Envoy sends no SNI and checks the name "+host)
		}
		return b.originateTLS(dr, field, tls, host)
	}
}
