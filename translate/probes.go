package translate

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	healthcheck "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	corev1 "k8s.io/api/core/v1"

	"github.com/wardenmesh/warden/inject"
	"github.com/wardenmesh/warden/watch"
)

// The application-probe listener (Istio's status port 15020, which pilot-agent serves
// there): the kubelet, from the node, sends the probes the injector rewrote
// (inject.rewriteAppProbes) in plaintext to <pod IP>:15020/app-health/<container>/<kind>,
// and the sidecar answers them from the original probe stored in the Pod's
// inject.AnnotationAppProbers:
//
//   - httpGet: a GET goes to 127.0.0.1:<port> with the original path, the Host the
//     kubelet would have sent (a Host entry of httpHeaders, else <httpGet.host or the
//     pod IP>:<port>) and httpHeaders, over TLS without verification for scheme HTTPS
//     (as the kubelet does), with timeoutSeconds as the route timeout. The app's status
//     and body come back as they are. httpGet.host names only the Host: the request
//     always goes to the pod's own loopback, never to another host.
//   - tcpSocket and grpc: Envoy actively health-checks 127.0.0.1:<port> (a TCP connect,
//     or grpc.health.v1.Health/Check for grpc.service) every probeCheckInterval, and the
//     health_check filter answers the probe path 200 while the last check passed, 503
//     otherwise. This differs from Istio's on-demand check: the answer may be up to one
//     interval (plus timeoutSeconds) old.
//
// Every other path is 404. The listener has no authentication and no RBAC, like
// Istio's: the kubelet speaks plaintext and has no mesh identity. What it exposes is
// exactly what the pod's own probes declare, on loopback, which the kubelet (and any
// node-network peer) could already ask of the pod before it joined the mesh.
//
// The probes come only from the Pod (or Deployment template) object wardend reads,
// never from the proxy's node metadata or credential: a proxy with no such object
// (proxyWorkload synthesizes one) gets no probe listener, so a proxy cannot add routes
// to loopback ports of its own choosing.
const (
	appProbeListenerName = "0.0.0.0_15020"
	appProbePort         = 15020
	// probeCheckInterval is how often tcpSocket and grpc probes are checked.
	probeCheckInterval = 2 * time.Second
	// defaultProbeTimeout is the Kubernetes default timeoutSeconds.
	defaultProbeTimeout = time.Second
)

// envoyPorts are the sidecar's own ports: a probe may not point at them (the admin
// interface, capture listeners, this listener).
var envoyPorts = map[int]bool{15000: true, 15001: true, 15006: true, 15020: true, 15021: true, 15090: true}

var (
	// probePathRE is inject.ProbePaths' form: /app-health/<container name>/<kind>.
	probePathRE = regexp.MustCompile(`^/app-health/([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)/(livez|readyz|startupz)$`)
	// headerNameRE is an HTTP token (RFC 9110 field-name).
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	// hostnameRE is a DNS name.
	hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$`)
	// hostRE is a host, optionally with a port: a DNS name, an IPv4 or a bracketed IPv6.
	hostRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)
	// grpcServiceRE is a gRPC service name (a dotted proto name).
	grpcServiceRE = regexp.MustCompile(`^[A-Za-z0-9_.-]*$`)
)

// appProbe is one valid entry of the annotation.
type appProbe struct {
	path   string // /app-health/<container>/<kind>
	prober inject.Prober
}

// appProbes decodes w's AnnotationAppProbers, sorted by path. Invalid JSON or entries
// are reported (naming the Pod and the annotation) and dropped; the rest are served.
func (b *builder) appProbes(w *watch.Workload) []appProbe {
	v, ok := w.PodAnnotations[inject.AnnotationAppProbers]
	if !ok {
		return nil
	}
	field := "metadata.annotations[" + inject.AnnotationAppProbers + "]"
	if w.Kind == "Deployment" {
		field = "spec.template." + field
	}
	warn := func(msg string) { b.diag(severityWarning, &w.Meta, field, msg) }
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		warn("not a JSON object of probers: " + err.Error() + "; no application probes served")
		return nil
	}
	var out []appProbe
	for path, r := range raw {
		var p inject.Prober
		err := json.Unmarshal(r, &p)
		if err == nil {
			err = checkProbe(path, p)
		}
		if err != nil {
			warn(fmt.Sprintf("prober %q: %v; not served", path, err))
			continue
		}
		out = append(out, appProbe{path: path, prober: p})
	}
	slices.SortFunc(out, func(a, b appProbe) int { return strings.Compare(a.path, b.path) })
	return out
}

// checkProbe accepts an entry only when everything in it can be expressed exactly.
func checkProbe(path string, p inject.Prober) error {
	if !probePathRE.MatchString(path) {
		return fmt.Errorf("path is not /app-health/<container>/livez|readyz|startupz")
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if envoyPorts[p.Port()] {
		return fmt.Errorf("port %d is the sidecar's own", p.Port())
	}
	if p.TimeoutSeconds < 0 {
		return fmt.Errorf("timeoutSeconds is negative")
	}
	switch {
	case p.HTTPGet != nil:
		h := p.HTTPGet
		if h.Scheme != "" && h.Scheme != corev1.URISchemeHTTP && h.Scheme != corev1.URISchemeHTTPS {
			return fmt.Errorf("httpGet.scheme %q is not HTTP or HTTPS", h.Scheme)
		}
		if !printable(h.Path) || strings.ContainsAny(h.Path, " #") {
			return fmt.Errorf("httpGet.path %q is not a request path", h.Path)
		}
		if _, err := netip.ParseAddr(h.Host); h.Host != "" && err != nil && !hostnameRE.MatchString(h.Host) {
			return fmt.Errorf("httpGet.host %q is not a host name", h.Host)
		}
		for i, hd := range h.HTTPHeaders {
			if !headerNameRE.MatchString(hd.Name) {
				return fmt.Errorf("httpGet.httpHeaders[%d].name %q is not a header name", i, hd.Name)
			}
			if !printable(hd.Value) {
				return fmt.Errorf("httpGet.httpHeaders[%d].value is not printable", i)
			}
			if isHostHeader(hd.Name) && !hostRE.MatchString(hd.Value) {
				return fmt.Errorf("httpGet.httpHeaders[%d] Host %q is not a host name", i, hd.Value)
			}
		}
	case p.GRPC != nil:
		if p.GRPC.Service != nil && !grpcServiceRE.MatchString(*p.GRPC.Service) {
			return fmt.Errorf("grpc.service %q is not a gRPC service name", *p.GRPC.Service)
		}
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func isHostHeader(name string) bool { return strings.EqualFold(name, "host") }

// appProbeResources are the application-probe listener and its clusters for w, or
// nothing when w declares no (valid) probes.
func (b *builder) appProbeResources(w *watch.Workload) (*listener.Listener, []*cluster.Cluster) {
	probes := b.appProbes(w)
	if len(probes) == 0 {
		return nil, nil
	}
	clusters := map[string]*cluster.Cluster{}
	var routes []*route.Route
	var checks []*hcm.HttpFilter
	for _, ap := range probes {
		p := ap.prober
		timeout := defaultProbeTimeout
		if p.TimeoutSeconds > 0 {
			timeout = time.Duration(p.TimeoutSeconds) * time.Second
		}
		port := uint32(p.Port())
		switch {
		case p.HTTPGet != nil:
			name, https := appHealthCluster("http", port, ""), p.HTTPGet.Scheme == corev1.URISchemeHTTPS
			if https {
				name = appHealthCluster("https", port, "")
			}
			if clusters[name] == nil {
				c := b.staticCluster(name, "127.0.0.1", port)
				if https {
					// The kubelet does not verify the app's certificate either.
					c.TransportSocket = b.tlsSocket(&tlsv3.UpstreamTlsContext{})
				}
				clusters[name] = c
			}
			routes = append(routes, b.probeRoute(ap.path, name, p.HTTPGet, w.IP, timeout))
		default:
			kind, service := "tcp", ""
			if p.GRPC != nil {
				kind = "grpc"
				if p.GRPC.Service != nil {
					service = *p.GRPC.Service
				}
			}
			name := appHealthCluster(kind, port, service)
			if timeout > clusterTimeout(clusters[name]) {
				clusters[name] = b.checkedCluster(name, port, p.GRPC != nil, service, timeout)
			}
			checks = append(checks, &hcm.HttpFilter{
				Name: wellknown.HealthCheck,
				ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: b.any(&healthcheck.HealthCheck{
					PassThroughMode: wrapperspb.Bool(false),
					Headers: []*route.HeaderMatcher{{
						Name: ":path",
						HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
							MatchPattern: &matcher.StringMatcher_Exact{Exact: ap.path},
						}},
					}},
					ClusterMinHealthyPercentages: map[string]*typev3.Percent{name: {Value: 100}},
				})},
			})
		}
	}
	m := &hcm.HttpConnectionManager{
		StatPrefix: appProbeListenerName,
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
			Name: appProbeListenerName,
			VirtualHosts: []*route.VirtualHost{{
				Name:    "app-health",
				Domains: []string{"*"},
				Routes:  routes, // no match: 404
			}},
		}},
		HttpFilters: checks,
	}
	l := &listener.Listener{
		Name:             appProbeListenerName,
		Address:          socketAddress("0.0.0.0", appProbePort),
		TrafficDirection: core.TrafficDirection_INBOUND,
		FilterChains: []*listener.FilterChain{{
			Name:    appProbeListenerName,
			Filters: []*listener.Filter{b.httpConnectionManager(m)},
		}},
	}
	names := make([]string, 0, len(clusters))
	for n := range clusters {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]*cluster.Cluster, len(names))
	for i, n := range names {
		out[i] = clusters[n]
	}
	return l, out
}

// appHealthCluster names a probe cluster: app-health|<kind>|<port>, plus |<service>
// for grpc.
func appHealthCluster(kind string, port uint32, service string) string {
	name := "app-health|" + kind + "|" + strconv.FormatUint(uint64(port), 10)
	if kind == "grpc" {
		name += "|" + service
	}
	return name
}

// probeRoute forwards a GET of the probe path to the app as the original httpGet.
func (b *builder) probeRoute(path, cluster string, h *corev1.HTTPGetAction, podIP string, timeout time.Duration) *route.Route {
	target := h.Path
	if !strings.HasPrefix(target, "/") {
		target = "/" + target // as the kubelet's URL does
	}
	action := &route.RouteAction{
		ClusterSpecifier: &route.RouteAction_Cluster{Cluster: cluster},
		PrefixRewrite:    target,
		Timeout:          duration(timeout),
	}
	// The Host the kubelet would have sent the app: a Host entry of httpHeaders, else
	// <httpGet.host, else the pod IP>:<port>.
	host := h.Host
	if host == "" {
		host = podIP
	}
	if host != "" {
		host = net.JoinHostPort(host, strconv.Itoa(h.Port.IntValue()))
	}
	r := &route.Route{
		Name: path,
		Match: &route.RouteMatch{
			PathSpecifier: &route.RouteMatch_Path{Path: path},
			Headers: []*route.HeaderMatcher{{
				Name: ":method",
				HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
					MatchPattern: &matcher.StringMatcher_Exact{Exact: "GET"},
				}},
			}},
		},
		Action: &route.Route_Route{Route: action},
	}
	seen := map[string]bool{}
	for _, hd := range h.HTTPHeaders {
		if isHostHeader(hd.Name) {
			host = hd.Value // the kubelet sends a Host entry as the request's Host
			continue
		}
		// The first value replaces what the caller sent; repeated names add values,
		// as the kubelet sends them.
		appendAction := core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		if seen[strings.ToLower(hd.Name)] {
			appendAction = core.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		}
		seen[strings.ToLower(hd.Name)] = true
		r.RequestHeadersToAdd = append(r.RequestHeadersToAdd, &core.HeaderValueOption{
			Header:       &core.HeaderValue{Key: hd.Name, Value: hd.Value},
			AppendAction: appendAction,
		})
	}
	if host != "" {
		action.HostRewriteSpecifier = &route.RouteAction_HostRewriteLiteral{HostRewriteLiteral: host}
	}
	return r
}

// checkedCluster is a STATIC cluster of 127.0.0.1:port that Envoy health-checks: a
// TCP connect, or the gRPC health service.
func (b *builder) checkedCluster(name string, port uint32, grpc bool, service string, timeout time.Duration) *cluster.Cluster {
	c := b.staticCluster(name, "127.0.0.1", port)
	hc := &core.HealthCheck{
		Timeout:            duration(timeout),
		Interval:           duration(probeCheckInterval),
		NoTrafficInterval:  duration(probeCheckInterval), // no traffic is ever routed here
		UnhealthyThreshold: wrapperspb.UInt32(1),
		HealthyThreshold:   wrapperspb.UInt32(1),
		HealthChecker:      &core.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &core.HealthCheck_TcpHealthCheck{}},
	}
	if grpc {
		hc.HealthChecker = &core.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &core.HealthCheck_GrpcHealthCheck{
			ServiceName: service,
			Authority:   "127.0.0.1:" + strconv.FormatUint(uint64(port), 10),
		}}
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": b.any(&upstreamhttp.HttpProtocolOptions{
				UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
					ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
						ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
							Http2ProtocolOptions: &core.Http2ProtocolOptions{},
						},
					},
				},
			}),
		}
	}
	c.HealthChecks = []*core.HealthCheck{hc}
	return c
}

// clusterTimeout is the health-check timeout of a checkedCluster (0 for nil): probes
// sharing a cluster get the longest timeout any of them asks for.
func clusterTimeout(c *cluster.Cluster) time.Duration {
	if c == nil || len(c.HealthChecks) == 0 {
		return 0
	}
	return c.HealthChecks[0].Timeout.AsDuration()
}
