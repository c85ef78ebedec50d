package translate

import (
	"slices"
	"strconv"
	"strings"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
)

// passthroughChains forwards the TLS connections of a PASSTHROUGH server, unopened,
// to the mesh services a bound VirtualService's tls route names for the SNI (weighted
// when several, see tcpRouteProxy): one filter chain per route match (its sniHosts
// within the server's hosts), as Istio's buildGatewayNetworkFiltersFromTLSRoutes does.
// The backend terminates the client's TLS itself; an SNI no route claims matches no
// chain and the connection is closed.
func (b *builder) passthroughChains(s gatewayServer, port uint32, match *listener.FilterChainMatch) []*listener.FilterChain {
	var out []*listener.FilterChain
	stat := "outbound_0.0.0.0_" + strconv.FormatUint(uint64(port), 10)
	for _, vs := range b.in.VirtualServices {
		if !vsBindsGateway(vs, s.gw) || len(boundHosts(vs, s)) == 0 {
			continue
		}
		for i, tr := range vs.Spec.GetTls() {
			field := "spec.tls[" + strconv.Itoa(i) + "]"
			// The route's tcp_proxy, made (and its diagnostics given) once, by the
			// first match that applies.
			var proxy *listener.Filter
			resolved, usable := false, false
			for j, m := range tr.GetMatch() {
				mf := field + ".match[" + strconv.Itoa(j) + "]"
				if m.GetPort() != 0 && m.GetPort() != port {
					continue
				}
				if len(m.GetGateways()) > 0 && !slices.ContainsFunc(m.GetGateways(), func(g string) bool {
					return vsBindsGateway(&virtualService{Meta: vs.Meta, Spec: &networking.VirtualService{Gateways: []string{g}}}, s.gw)
				}) {
					continue
				}
				var sni []string
				for _, h := range m.GetSniHosts() {
					if len(match.GetServerNames()) == 0 || slices.ContainsFunc(match.GetServerNames(), func(p string) bool { return hostCovers(p, h) }) {
						sni = append(sni, h)
					}
				}
				if len(sni) == 0 {
					b.diag(severityWarning, &vs.Meta, mf+".sniHosts", "no sniHost within the hosts of "+s.gw.Key()+" "+s.field+": match ignored")
					continue
				}
				if !resolved {
					proxy, usable = b.tcpRouteProxy(vs, field, stat, tr.GetRoute())
					resolved = true
				}
				if !usable {
					break
				}
				name := strings.Join([]string{strconv.FormatUint(uint64(port), 10), vs.Namespace, vs.Name, strconv.Itoa(i), strconv.Itoa(j)}, ".")
				out = append(out, &listener.FilterChain{
					Name:             name,
					FilterChainMatch: &listener.FilterChainMatch{ServerNames: sni},
					Filters:          b.withAuthz(stat, []*listener.Filter{proto.Clone(proxy).(*listener.Filter)}),
				})
			}
		}
	}
	if len(out) == 0 {
		b.diag(severityWarning, &s.gw.Meta, s.field, "PASSTHROUGH server: no VirtualService tls route with sniHosts is bound to it: it forwards nothing")
	}
	return out
}
