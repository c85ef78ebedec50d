package translate

import (
	"slices"
	"strconv"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/wardenmesh/warden/watch"
)

type virtualService = watch.Config[*networking.VirtualService]

// gatewayHost is one virtual host of a gateway port and the VirtualServices bound
// to it, oldest first: their routes are merged in that order, as Istio does.
type gatewayHost struct {
	host   string
	vs     []*virtualService
	server []gatewayServer // the server each VirtualService was bound through
}

// gatewayVirtualHosts binds every VirtualService naming one of the servers' Gateways
// to the hosts it shares with the server, sorted by host.
func (b *builder) gatewayVirtualHosts(port uint32, servers []gatewayServer) []*route.VirtualHost {
	hosts := map[string]*gatewayHost{}
	for _, vs := range b.in.VirtualServices {
		for _, s := range servers {
			if !vsBindsGateway(vs, s.gw) {
				continue
			}
			for _, h := range boundHosts(vs, s) {
				gh := hosts[h]
				if gh == nil {
					gh = &gatewayHost{host: h}
					hosts[h] = gh
				}
				if !slices.Contains(gh.vs, vs) {
					gh.vs = append(gh.vs, vs)
					gh.server = append(gh.server, s)
				}
			}
		}
	}
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		names = append(names, h)
	}
	slices.Sort(names)
	out := make([]*route.VirtualHost, 0, len(names))
	for _, h := range names {
		gh := hosts[h]
		vh := &route.VirtualHost{
			Name:    h + ":" + strconv.FormatUint(uint64(port), 10),
			Domains: gatewayDomains(h),
		}
		for i, vs := range gh.vs {
			vh.Routes = append(vh.Routes, b.vsRoutes(vs, gh.server[i], port)...)
			// httpsRedirect: Envoy answers 301 to https (Istio sets RequireTls ALL).
			if gh.server[i].server.GetTls().GetHttpsRedirect() && !isTLSServer(gh.server[i].server) {
				vh.RequireTls = route.VirtualHost_ALL
			}
		}
		out = append(out, vh)
	}
	return out
}

// gatewayDomains are the Host values a gateway virtual host matches: the host
// alone, as Istio builds them (gateway.go buildGatewayHTTPRouteConfig: Domains is
// []string{hostname}). The route configuration ignores the Host port
// (gatewayRoute), so "www.example.com:8080" matches "www.example.com" and
// "*.example.com" alike; "*" matches everything.
func gatewayDomains(host string) []string {
	return []string{host}
}

// vsBindsGateway reports whether the VirtualService's gateways name gw: "ns/name",
// or a bare name in the VirtualService's namespace. "mesh" means sidecars.
func vsBindsGateway(vs *virtualService, gw *watch.Config[*networking.Gateway]) bool {
	for _, ref := range vs.Spec.GetGateways() {
		ns, name, ok := strings.Cut(ref, "/")
		if !ok {
			ns, name = vs.Namespace, ref
		}
		if ns == gw.Namespace && name == gw.Name {
			return true
		}
	}
	return false
}

// boundHosts are the hosts of the VirtualService the server accepts. A server host
// may restrict the VirtualService namespace ("ns/host", "./host" for the Gateway's
// own, "*/host" or plain "host" for any). A wildcard on either side takes the more
// specific host of the two.
func boundHosts(vs *virtualService, s gatewayServer) []string {
	var out []string
	for _, sh := range s.server.GetHosts() {
		ns, host, ok := strings.Cut(sh, "/")
		if !ok {
			ns, host = "*", sh
		}
		if ns == "." {
			ns = s.gw.Namespace
		}
		if ns != "*" && ns != vs.Namespace {
			continue
		}
		for _, vh := range vs.Spec.GetHosts() {
			switch {
			case hostCovers(host, vh):
				out = append(out, vh)
			case hostCovers(vh, host):
				out = append(out, host)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// hostCovers reports whether pattern ("*", "*.example.com" or a name) matches host,
// which may itself be a narrower wildcard.
func hostCovers(pattern, host string) bool {
	switch {
	case pattern == "*" || pattern == host:
		return true
	case strings.HasPrefix(pattern, "*."):
		return strings.HasSuffix(host, pattern[1:]) && len(host) > len(pattern)-1
	}
	return false
}
