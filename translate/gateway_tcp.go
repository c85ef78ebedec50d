package translate

import (
	"slices"
	"strconv"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	networking "istio.io/api/networking/v1alpha3"
)

// terminatedTCPChain is the filter chain of a TLS (not HTTPS) server that terminates
// TLS (SIMPLE, MUTUAL, ...): the decrypted bytes go, opaque, to the destination of
// the destinations (weighted when several, see tcpRouteProxy) of the first valid tcp
// route of a bound VirtualService that matches the port (and, when it lists gateways,
// this Gateway), as Istio's buildGatewayNetworkFiltersFromTCPRoutes does. Without such
// a route the server refuses connections.
func (b *builder) terminatedTCPChain(s gatewayServer, port uint32, name string, match *listener.FilterChainMatch, ts *core.TransportSocket) *listener.FilterChain {
	stat := "outbound_0.0.0.0_" + strconv.FormatUint(uint64(port), 10)
	for _, vs := range b.in.VirtualServices {
		if !vsBindsGateway(vs, s.gw) || len(boundHosts(vs, s)) == 0 {
			continue
		}
		for i, r := range vs.Spec.GetTcp() {
			field := "spec.tcp[" + strconv.Itoa(i) + "]"
			if !tcpRouteMatches(r, port, vs, s) {
				continue
			}
			proxy, ok := b.tcpRouteProxy(vs, field, stat, r.GetRoute())
			if !ok {
				continue
			}
			return &listener.FilterChain{
				Name:             name,
				FilterChainMatch: match,
				TransportSocket:  ts,
				Filters:          b.withAuthz(stat, []*listener.Filter{proxy}),
			}
		}
	}
	b.diag(severityWarning, &s.gw.Meta, s.field,
		"TLS server "+serverLabel(s)+" terminates TLS but no VirtualService tcp route is bound to it: it refuses connections")
	return b.refusingChain(name, match)
}

// tcpRouteMatches reports whether a tcp route applies on port of s's Gateway: no
// match, or a match whose port and gateways (when set) fit.
func tcpRouteMatches(r *networking.TCPRoute, port uint32, vs *virtualService, s gatewayServer) bool {
	if len(r.GetMatch()) == 0 {
		return true
	}
	for _, m := range r.GetMatch() {
		if m.GetPort() != 0 && m.GetPort() != port {
			continue
		}
		if len(m.GetGateways()) > 0 && !slices.ContainsFunc(m.GetGateways(), func(g string) bool {
			return vsBindsGateway(&virtualService{Meta: vs.Meta, Spec: &networking.VirtualService{Gateways: []string{g}}}, s.gw)
		}) {
			continue
		}
		return true
	}
	return false
}
