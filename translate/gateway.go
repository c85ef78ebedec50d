package translate

import (
	"slices"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/wardenmesh/warden/watch"
)

// gatewayServer is one HTTP server of a Gateway that selects the gateway proxy.
type gatewayServer struct {
	gw     *watch.Config[*networking.Gateway]
	server *networking.Server
	field  string // spec.servers[i], for diagnostics
}

// translateGateway computes the resources of an ingress gateway: a listener bound to
// each HTTP server port of the Gateways selecting it, routes from the VirtualServices
// bound to those Gateways, and the mesh clusters, reached over mTLS with the
// gateway's own identity exactly as a sidecar of its namespace would.
func (x *Index) translateGateway(p Proxy) *Output {
	w := x.gatewayWorkload(p)
	b := newBuilder(x)
	b.w = w
	b.trustedHops = b.gatewayTrustedHops(w)
	byPort := b.gatewayServers(w)
	ports := make([]uint32, 0, len(byPort))
	for port := range byPort {
		ports = append(ports, port)
	}
	slices.Sort(ports)

	var listeners, routes, clusters []types.Resource
	for _, port := range ports {
		if slices.ContainsFunc(byPort[port], func(s gatewayServer) bool { return isTLSServer(s.server) }) {
			l, rs := b.gatewayTLSListener(port, w, byPort[port])
			listeners, routes = append(listeners, l), append(routes, rs...)
			continue
		}
		listeners = append(listeners, b.gatewayListener(port, w))
		routes = append(routes, b.gatewayRoute(port, byPort[port]))
	}
	// Every chain's HCM or tcp_proxy sends its denials to wardend, as a sidecar's do.
	for _, l := range listeners {
		b.withAccessLogs(l.(*listener.Listener), p.AccessLog)
	}
	for _, c := range b.extAuthzClusters() {
		clusters = append(clusters, c)
	}
	diags := b.diags
	if b.err != nil {
		diags = append(diags, translationError("gateway "+p.Namespace+"/"+p.Pod, b.err))
		listeners, routes, clusters = nil, nil, nil
	}
	listeners = validated(&diags, listeners)
	routes = validated(&diags, routes)
	clusters = validated(&diags, clusters)

	ob := x.outboundFor(w.Namespace, w.PodLabels)
	if b.refusing && len(listeners) > 0 && !slices.ContainsFunc(ob.clusters, func(c types.Resource) bool { return resourceName(c) == BlackHoleCluster }) {
		clusters = sortedByName(append(clusters, b.blackHoleCluster(BlackHoleCluster)))
	}
	out := &Output{
		Listeners:   sortedByName(listeners),
		Routes:      sortedByName(routes),
		Clusters:    mergeByName(sortedByName(clusters), ob.clusters),
		Endpoints:   slices.Clip(ob.endpoints),
		Diagnostics: sortedDiagnostics(append(diags, ob.diags...)),
	}
	if b.secrets || ob.secrets {
		out.SecretNames = []string{SecretRootCA, SecretDefault}
	}
	// The outbound clusters' DestinationRule credentials are referenced whether or not
	// the gateway has listeners.
	creds := slices.Clone(ob.credentials)
	if len(listeners) > 0 {
		creds = append(creds, b.credentials...)
		if len(b.credentials) > 0 {
			out.GatewayCredentialNames = slices.Compact(slices.Sorted(slices.Values(b.credentials)))
		}
	}
	if len(creds) > 0 {
		slices.Sort(creds)
		out.SecretNames = append(out.SecretNames, slices.Compact(creds)...)
	}
	return out
}

// gatewayClaimKey is the node metadata key by which a proxy claims the gateway role
// (xds.MetaProxyType; translate does not import xds).
const gatewayClaimKey = "WARDEN_PROXY_TYPE"

// ServesGateway reports whether p is served as a gateway: it claims the role and the
// Pod (or Deployment) object of its proven pod says so (label istio: ingressgateway or
// egressgateway, or annotation inject.istio.io/templates: gateway: watch.Workload.Gateway). The claim alone, node metadata any proxy
// writes, never makes a gateway: a gateway is selected by Gateways and gets their
// credentialName Secrets. A proxy without a Pod object is never a gateway.
func (x *Index) ServesGateway(p Proxy) bool {
	if !p.Gateway {
		return false
	}
	w := x.in.WorkloadByPod(p.Namespace, p.Pod)
	return w != nil && w.Gateway
}

// gatewayWorkload is the proxy's workload, marked as a gateway; callers check
// ServesGateway (or the Pod's own Gateway label) first.
func (x *Index) gatewayWorkload(p Proxy) *watch.Workload {
	w := *x.proxyWorkload(p)
	w.Gateway, w.Sidecar = true, false
	return &w
}

// gatewayServers groups by port the HTTP servers of every Gateway, in any namespace,
// whose selector matches the gateway's labels (an empty selector matches every
// gateway). Other protocols are reported and skipped.
func (b *builder) gatewayServers(w *watch.Workload) map[uint32][]gatewayServer {
	out := map[uint32][]gatewayServer{}
	for _, gw := range b.in.Gateways {
		if !attach(b.in.RootNamespace, gatewayPolicy(gw), workloadOf(w)).attached() {
			continue
		}
		for i, s := range gw.Spec.GetServers() {
			field := "spec.servers[" + strconv.Itoa(i) + "]"
			switch strings.ToUpper(s.GetPort().GetProtocol()) {
			case "HTTP", "HTTP2", "GRPC", "HTTPS", "TLS":
			default:
				b.diag(severityWarning, &gw.Meta, field+".port.protocol",
					"protocol "+s.GetPort().GetProtocol()+" is not supported on gateways (only HTTP, HTTPS and TLS): server ignored")
				continue
			}
			port := s.GetPort().GetNumber()
			if port == 0 || port > 65535 {
				b.diag(severityError, &gw.Meta, field+".port.number", "port must be in 1..65535: server ignored")
				continue
			}
			out[port] = append(out[port], gatewayServer{gw: gw, server: s, field: field})
		}
	}
	if len(out) == 0 {
		b.diag(severityWarning, &w.Meta, "metadata.labels", "no Gateway with an HTTP server selects this gateway: it serves nothing")
	}
	return out
}

// gatewayRouteName is the RDS name of a gateway port, as Istio names it.
func gatewayRouteName(port uint32) string { return "http." + strconv.FormatUint(uint64(port), 10) }

// gatewayListener is 0.0.0.0_<port>, bound to the port (a gateway has no capture):
// one HCM with the workload's policy filters, routed by RDS http.<port>. The
// gateway is the edge: it uses the caller's address and drops any client cert
// header a caller sends.
func (b *builder) gatewayListener(port uint32, w *watch.Workload) *listener.Listener {
	p := strconv.FormatUint(uint64(port), 10)
	name := "0.0.0.0_" + p
	return &listener.Listener{
		Name:             name,
		Address:          socketAddress("0.0.0.0", port),
		TrafficDirection: core.TrafficDirection_OUTBOUND,
		FilterChains: []*listener.FilterChain{{
			Name:    name,
			Filters: []*listener.Filter{b.gatewayHCM(name, gatewayRouteName(port), w)},
		}},
	}
}

// gatewayHCM is the HTTP connection manager of a gateway listener (stat prefix
// outbound_<listener>), routed by RDS routeName. It trusts as many X-Forwarded-For
// hops as the gateway's gatewayTopology.numTrustedProxies says (gateway_topology.go).
func (b *builder) gatewayHCM(name, routeName string, w *watch.Workload) *listener.Filter {
	filters := slices.Clone(b.gatewayHTTPFilters(w))
	filters = append(filters, &hcm.HttpFilter{
		Name:       wellknown.Router,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: b.any(&router.Router{})},
	})
	m := &hcm.HttpConnectionManager{
		StatPrefix: "outbound_" + name,
		CodecType:  hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource: adsSource(), RouteConfigName: routeName,
		}},
		HttpFilters:                  filters,
		NormalizePath:                boolValue(true),
		PathWithEscapedSlashesAction: hcm.HttpConnectionManager_KEEP_UNCHANGED,
		UseRemoteAddress:             boolValue(true),
		XffNumTrustedHops:            b.trustedHops,
		ForwardClientCertDetails:     hcm.HttpConnectionManager_SANITIZE,
	}
	return &listener.Filter{
		Name:       wellknown.HTTPConnectionManager,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: b.any(m)},
	}
}

// gatewayHTTPFilters are the policy filters of the gateway's HCM: RequestAuthentication
// and AuthorizationPolicy select a gateway like any workload.
func (b *builder) gatewayHTTPFilters(w *watch.Workload) []*hcm.HttpFilter {
	return b.inboundHTTPFilters(w)
}

// gatewayRoute is RouteConfiguration http.<port>: one virtual host per host of the
// VirtualServices bound to the port's servers. A Host matching none gets 404. As in
// Istio (pilot/pkg/networking/core/gateway.go buildGatewayHTTPRouteConfig sets
// IgnorePortInHostMatching for every Envoy gateway), the port of the Host header
// plays no part in choosing the virtual host: a gateway behind a load balancer or
// node port cannot know which port the client wrote.
func (b *builder) gatewayRoute(port uint32, servers []gatewayServer) *route.RouteConfiguration {
	return b.gatewayRouteNamed(gatewayRouteName(port), port, servers)
}

// gatewayRouteNamed is gatewayRoute under another RDS name (an HTTPS server's).
func (b *builder) gatewayRouteNamed(name string, port uint32, servers []gatewayServer) *route.RouteConfiguration {
	return &route.RouteConfiguration{
		Name:                     name,
		VirtualHosts:             b.gatewayVirtualHosts(port, servers),
		ValidateClusters:         boolValue(false),
		IgnorePortInHostMatching: true,
	}
}
