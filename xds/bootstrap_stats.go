package xds

import (
	"fmt"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"

	"github.com/wardenmesh/warden/internal/protoany"
)

// DefaultStatsPort is where a proxy serves its own Envoy stats for scraping, as
// Istio's sidecars do (the injected container declares it as http-envoy-prom).
const DefaultStatsPort = 15090

// Names of the stats listener and of the cluster that reaches Envoy's admin.
const (
	StatsListenerName = "prometheus_stats"
	statsPath         = "/stats/prometheus"
)

// statsResources is a static listener on 0.0.0.0:<port> that serves exactly
// GET /stats/prometheus from Envoy's loopback admin and answers 404 to everything
// else: scrapers (anyone who reaches the pod's port, as with Istio's 15090) see the
// proxy's stats in Prometheus format, never config_dump or another admin endpoint,
// so no credential or certificate leaves the pod through it.
func statsResources(port, adminPort uint32, adminAddr string) (*bootstrap.Bootstrap_StaticResources, error) {
	r, err := protoany.Marshal(&router.Router{})
	if err != nil {
		return nil, err
	}
	m := &hcm.HttpConnectionManager{
		StatPrefix: StatsListenerName,
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
			Name: StatsListenerName,
			VirtualHosts: []*route.VirtualHost{{
				Name: StatsListenerName, Domains: []string{"*"},
				Routes: []*route.Route{{
					Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: statsPath},
						Headers: []*route.HeaderMatcher{{Name: ":method", HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: "GET"}}}},
					Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: StatsListenerName}}},
				}, {
					Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
					Action: &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: 404}},
				}},
			}},
		}},
		HttpFilters: []*hcm.HttpFilter{{Name: wellknown.Router, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: r}}},
	}
	mAny, err := protoany.Marshal(m)
	if err != nil {
		return nil, err
	}
	sock := func(addr string, p uint32) *core.Address {
		return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: addr, PortSpecifier: &core.SocketAddress_PortValue{PortValue: p}}}}
	}
	if adminAddr == "" {
		return nil, fmt.Errorf("stats listener: no admin address")
	}
	return &bootstrap.Bootstrap_StaticResources{
		Listeners: []*listener.Listener{{
			Name:    StatsListenerName,
			Address: sock("0.0.0.0", port),
			FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
				Name: wellknown.HTTPConnectionManager, ConfigType: &listener.Filter_TypedConfig{TypedConfig: mAny}}}}},
		}},
		Clusters: []*cluster.Cluster{{
			Name:                 StatsListenerName,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			LoadAssignment: &endpoint.ClusterLoadAssignment{ClusterName: StatsListenerName, Endpoints: []*endpoint.LocalityLbEndpoints{{
				LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
					Address: sock(adminAddr, adminPort)}}}},
			}}},
		}},
	}, nil
}
