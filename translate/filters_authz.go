package translate

import (
	"net/netip"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/wardenmesh/warden/translate/authz"
	"github.com/wardenmesh/warden/watch"
)

// The authorization filters of one proxy: translate picks the policies (selectAuthz)
// and places the filters; translate/authz builds them.

// authzPolicies returns the AuthorizationPolicies of the translated workload w,
// resolved once per builder (one builder translates one proxy); nil without one.
func (b *builder) authzPolicies(w *watch.Workload) *authz.Set {
	if b.authz == nil && w != nil {
		sel := b.x.selectAuthz(w)
		b.authz = sel.set
		b.diags = append(b.diags, sel.diags...)
	}
	return b.authz
}

// authzHTTPFilters returns the CUSTOM filters (shadow RBAC, then ext_authz, per
// provider) and the RBAC filters AUDIT, DENY, ALLOW, for an HTTP chain.
func (b *builder) authzHTTPFilters(w *watch.Workload) (custom, rbac []*hcm.HttpFilter) {
	custom, rbac, diags, err := b.authzPolicies(w).HTTPFilters(b.in)
	b.keep(diags, err)
	return custom, rbac
}

// authzNetworkFilters are the filters before tcp_proxy on a TCP chain.
func (b *builder) authzNetworkFilters(statPrefix string) []*listener.Filter {
	out, diags, err := b.authzPolicies(b.w).NetworkFilters(b.in, statPrefix)
	b.keep(diags, err)
	return out
}

func (b *builder) keep(diags []watch.Diagnostic, err error) {
	b.diags = append(b.diags, diags...)
	if b.err == nil {
		b.err = err
	}
}

// withAuthz prepends the authorization filters to the filters of a TCP chain.
func (b *builder) withAuthz(statPrefix string, filters []*listener.Filter) []*listener.Filter {
	pre := b.authzNetworkFilters(statPrefix)
	if len(pre) == 0 {
		return filters
	}
	return append(pre, filters...)
}

// extAuthzClusters are the clusters the proxy's CUSTOM providers need that no Service
// provides.
func (b *builder) extAuthzClusters() []*cluster.Cluster {
	var out []*cluster.Cluster
	for _, p := range b.authzPolicies(b.w).ProviderClusters(b.in) {
		out = append(out, b.providerCluster(p))
	}
	return out
}

// providerCluster builds a provider's own cluster. A gRPC provider's cluster speaks
// HTTP/2; a provider in the mesh takes its endpoints (and auto mTLS) from the
// Service's EDS resource.
func (b *builder) providerCluster(p authz.ProviderCluster) *cluster.Cluster {
	var c *cluster.Cluster
	if p.Service != nil {
		fqdn := b.in.Hostname(p.Service)
		c = b.edsCluster(p.Name)
		c.EdsClusterConfig.ServiceName = outboundCluster(p.Port, fqdn)
		sec := b.clusterSecurity(p.Service, p.ServicePort, fqdn, false, nil)
		c.TransportSocket, c.TransportSocketMatches = sec.socket, sec.matches
	} else {
		c = b.staticCluster(p.Name, p.Host, p.Port)
		if _, err := netip.ParseAddr(p.Host); err != nil {
			c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS}
			c.DnsLookupFamily = cluster.Cluster_V4_PREFERRED
		}
		c.LoadAssignment.Endpoints[0].LbEndpoints[0].HostIdentifier = &endpoint.LbEndpoint_Endpoint{
			Endpoint: &endpoint.Endpoint{Address: socketAddress(p.Host, p.Port)},
		}
	}
	if p.GRPC {
		c.TypedExtensionProtocolOptions = b.upstreamHTTPOptions(protoHTTP2)
	}
	return c
}
