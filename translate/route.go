package translate

import (
	"net/netip"
	"strconv"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// outboundRoute is RouteConfiguration "<port>": the virtual hosts of the HTTP
// Services on the port, then allow_any, which sends unknown hosts to their original
// destination (Istio's ALLOW_ANY default), or block_all under REGISTRY_ONLY.
func (b *builder) outboundRoute(port uint32, vhosts []*route.VirtualHost) *route.RouteConfiguration {
	rc := &route.RouteConfiguration{
		Name:             strconv.FormatUint(uint64(port), 10),
		ValidateClusters: boolValue(false),
		VirtualHosts:     make([]*route.VirtualHost, 0, len(vhosts)+1),
	}
	rc.VirtualHosts = append(rc.VirtualHosts, vhosts...)
	rc.VirtualHosts = append(rc.VirtualHosts, b.unknownHostVirtualHost())
	return rc
}

var allowAnyVirtualHost = &route.VirtualHost{
	Name:    "allow_any",
	Domains: []string{"*"},
	Routes:  []*route.Route{routeToCluster("allow_any", PassthroughCluster)},
}

// serviceVirtualHost matches the names a client may use in Host for one Service port.
func serviceVirtualHost(s outboundService, local bool) *route.VirtualHost {
	p := strconv.FormatUint(uint64(s.port.Port), 10)
	return &route.VirtualHost{
		Name:    s.fqdn + ":" + p,
		Domains: hostDomains(s, p, local),
		Routes:  []*route.Route{routeToCluster("default", s.cluster)},
	}
}

// hostDomains are the Host header values that mean this Service, each bare and with
// the port. The short name resolves only inside the Service's own namespace.
func hostDomains(s outboundService, port string, local bool) []string {
	names := []string{s.fqdn, s.svc.Name + "." + s.svc.Namespace + ".svc", s.svc.Name + "." + s.svc.Namespace}
	if local {
		names = append(names, s.svc.Name)
	}
	if s.ip.IsValid() {
		ip := s.ip.String()
		if s.ip.Is6() {
			ip = "[" + ip + "]"
		}
		names = append(names, ip)
	}
	out := make([]string, 0, 2*len(names))
	for _, n := range names {
		out = append(out, n, n+":"+port)
	}
	return out
}

// clusterIP parses a Service's ClusterIP; the zero Addr when unknown or headless.
func clusterIP(s string) netip.Addr {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return ip
}
