package translate

import (
	"strconv"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"

	"github.com/wardenmesh/warden/translate/authz"
	"github.com/wardenmesh/warden/watch"
)

// tcpProxy forwards the connection to cluster.
func (b *builder) tcpProxy(statPrefix, cluster string) *listener.Filter {
	return &listener.Filter{
		Name: wellknown.TCPProxy,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: b.any(&tcpproxy.TcpProxy{
			StatPrefix:       statPrefix,
			ClusterSpecifier: &tcpproxy.TcpProxy_Cluster{Cluster: cluster},
		})},
	}
}

// httpConnectionManager builds an HCM around either an inline route configuration or
// an RDS reference (rdsName != "").
func (b *builder) httpConnectionManager(m *hcm.HttpConnectionManager) *listener.Filter {
	m.CodecType = hcm.HttpConnectionManager_AUTO
	authz.PathNormalization(b.in.Mesh, m)
	m.HttpFilters = append(m.HttpFilters, &hcm.HttpFilter{
		Name:       wellknown.Router,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: b.any(&router.Router{})},
	})
	return &listener.Filter{
		Name:       wellknown.HTTPConnectionManager,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: b.any(m)},
	}
}

// inboundHTTPFilters are the policy filters of w's inbound HCM, before the router, in
// Istio's order: CUSTOM (shadow RBAC + ext_authz per provider), jwt_authn, then RBAC
// AUDIT, DENY, ALLOW.
func (b *builder) inboundHTTPFilters(w *watch.Workload) []*hcm.HttpFilter {
	if w == nil {
		return nil
	}
	custom, rbac := b.authzHTTPFilters(w)
	out := append(custom, b.jwtHTTPFilters(w)...)
	return append(out, rbac...)
}

// inboundHTTP is the HCM of an inbound port. On mTLS chains the application gets the
// verified caller's SPIFFE ID in x-forwarded-client-cert; on plaintext chains the header
// is stripped so a caller cannot forge it.
func (b *builder) inboundHTTP(port uint32, mtls bool) *listener.Filter {
	p := strconv.FormatUint(uint64(port), 10)
	cluster := inboundCluster(port)
	m := &hcm.HttpConnectionManager{
		StatPrefix: "inbound_0.0.0.0_" + p,
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
			Name: cluster,
			VirtualHosts: []*route.VirtualHost{{
				Name:    "inbound|http|" + p,
				Domains: []string{"*"},
				Routes:  []*route.Route{routeToCluster("default", cluster)},
			}},
			ValidateClusters: boolValue(false),
		}},
		ForwardClientCertDetails: hcm.HttpConnectionManager_SANITIZE,
		HttpFilters:              b.inboundHTTPFilters(b.w),
	}
	if mtls {
		m.ForwardClientCertDetails = hcm.HttpConnectionManager_SANITIZE_SET
		m.SetCurrentClientCertDetails = &hcm.HttpConnectionManager_SetCurrentClientCertDetails{Uri: true}
	}
	return b.httpConnectionManager(m)
}

// routeToCluster matches every path and sends it to cluster with no route timeout
// (the application decides how long a request may take, as in Istio).
func routeToCluster(name, cluster string) *route.Route {
	return &route.Route{
		Name:  name,
		Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: cluster},
			Timeout:          duration(0),
		}},
	}
}
