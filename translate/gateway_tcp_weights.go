package translate

import (
	"math"
	"strconv"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	networking "istio.io/api/networking/v1alpha3"
)

// tcpRouteProxy is the tcp_proxy of a gateway tls or tcp route (field is
// spec.tls[i] or spec.tcp[i]): one destination is its cluster, whatever its weight;
// several become weighted_clusters, as Istio's outbound network filters build them: each
// destination of a positive weight is outbound|<port>||<host> with that weight, and one
// of weight 0 gets nothing. The weights are checked as Istio's VirtualService
// validation checks them (no weight below 0; with several destinations a total above
// 0, not necessarily 100, since Envoy takes them relative to their sum); a route that
// fails the check, or has no destination or one that cannot be resolved, is reported
// and ignored (ok false). The stat prefix stays the listener's, which the network RBAC
// filters share (Istio names weighted tcp proxies <VirtualService>.<namespace>).
func (b *builder) tcpRouteProxy(vs *virtualService, field, stat string, routes []*networking.RouteDestination) (*listener.Filter, bool) {
	if len(routes) == 0 {
		b.diag(severityWarning, &vs.Meta, field+".route", "a route without destinations forwards nothing: route ignored")
		return nil, false
	}
	var total int64
	valid := true
	for j, d := range routes {
		if w := d.GetWeight(); w < 0 {
			b.diag(severityError, &vs.Meta, field+".route["+strconv.Itoa(j)+"].weight",
				"weight "+strconv.Itoa(int(w))+" is below 0 (Istio rejects it): route ignored")
			valid = false
		}
		total += int64(max(d.GetWeight(), 0))
	}
	switch {
	case !valid:
		return nil, false
	case len(routes) > 1 && total == 0:
		b.diag(severityError, &vs.Meta, field+".route",
			"the total weight of the destinations is 0 (Istio rejects it): route ignored")
		return nil, false
	case total > math.MaxUint32:
		b.diag(severityError, &vs.Meta, field+".route",
			"the total weight of the destinations exceeds "+strconv.FormatUint(math.MaxUint32, 10)+": route ignored")
		return nil, false
	}
	clusters := make([]string, len(routes))
	for j, d := range routes {
		cluster, ok := b.destinationCluster(vs, field+".route["+strconv.Itoa(j)+"].destination", d.GetDestination())
		if !ok {
			return nil, false
		}
		clusters[j] = cluster
	}
	if len(routes) == 1 {
		return b.tcpProxy(stat, clusters[0]), true
	}
	wc := &tcpproxy.TcpProxy_WeightedCluster{}
	for j, d := range routes {
		if d.GetWeight() > 0 {
			wc.Clusters = append(wc.Clusters, &tcpproxy.TcpProxy_WeightedCluster_ClusterWeight{Name: clusters[j], Weight: uint32(d.GetWeight())})
		}
	}
	return &listener.Filter{
		Name: wellknown.TCPProxy,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: b.any(&tcpproxy.TcpProxy{
			StatPrefix:       stat,
			ClusterSpecifier: &tcpproxy.TcpProxy_WeightedClusters{WeightedClusters: wc},
		})},
	}, true
}
