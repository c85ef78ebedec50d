package authz

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extauthz "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extauthznet "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/ext_authz/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/wardenmesh/warden/translate/internal/shared"
	"github.com/wardenmesh/warden/watch"
)

const (
	extAuthzHTTPFilter    = "envoy.filters.http.ext_authz"
	extAuthzNetworkFilter = "envoy.filters.network.ext_authz"
	rbacHTTPFilter        = "envoy.filters.http.rbac"
	rbacNetworkFilter     = "envoy.filters.network.rbac"
	// defaultExtAuthzTimeout is Istio's default for a provider without timeout.
	defaultExtAuthzTimeout = 600 * time.Second
)

// extProvider is a MeshConfig extensionProvider of type envoyExtAuthzHttp or
// envoyExtAuthzGrpc, resolved to a host, port and Envoy cluster.
type extProvider struct {
	name  string
	http  *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationHttpProvider
	grpc  *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider
	host  string
	port  uint32
	svc   *watch.Service // nil when the host is not a Service of the mesh
	sport watch.ServicePort
}

func findProvider(in *watch.Input, name string) (*extProvider, string) {
	for _, ep := range in.Mesh.GetExtensionProviders() {
		if ep.GetName() != name {
			continue
		}
		p := &extProvider{name: name, http: ep.GetEnvoyExtAuthzHttp(), grpc: ep.GetEnvoyExtAuthzGrpc()}
		switch {
		case p.http != nil:
			p.host, p.port = p.http.GetService(), p.http.GetPort()
		case p.grpc != nil:
			p.host, p.port = p.grpc.GetService(), p.grpc.GetPort()
		default:
			return nil, "extension provider " + strconv.Quote(name) + " is not an envoyExtAuthzHttp or envoyExtAuthzGrpc provider"
		}
		if _, host, ok := strings.Cut(p.host, "/"); ok {
			p.host = host // "<namespace>/<host>"
		}
		if p.host == "" || p.port == 0 || p.port > 65535 {
			return nil, "extension provider " + strconv.Quote(name) + " needs a service and a port"
		}
		p.svc, p.sport = serviceFor(in, p.host, p.port)
		return p, ""
	}
	return nil, "unknown extension provider " + strconv.Quote(name) + " (not in MeshConfig extensionProviders)"
}

// serviceFor finds the Service port a provider names, by FQDN or "<name>.<ns>".
func serviceFor(in *watch.Input, host string, port uint32) (*watch.Service, watch.ServicePort) {
	svc := in.ServiceByHost(host)
	if svc == nil && strings.Count(host, ".") == 1 {
		svc = in.ServiceByHost(host + ".svc." + in.DomainSuffix)
	}
	if svc == nil || svc.ClusterIP == "None" {
		return nil, watch.ServicePort{}
	}
	for _, sp := range svc.Ports {
		if sp.Port == port && shared.IsStream(sp.Protocol) {
			return svc, sp
		}
	}
	return nil, watch.ServicePort{}
}

// clusterName is the cluster ext_authz calls. An HTTP provider that is a Service of
// the mesh uses the Service's outbound cluster (with its mTLS); others get their own.
func (p *extProvider) clusterName(in *watch.Input) string {
	if p.http != nil && p.svc != nil {
		return shared.OutboundCluster(p.port, in.Hostname(p.svc))
	}
	return "ext-authz|" + p.name
}

// extAuthzEnabled limits ext_authz to requests a CUSTOM rule of its provider matched:
// the shadow RBAC filter before it records the matched policy under this key.
func extAuthzEnabled(rbacFilter, prefix string) *matcher.MetadataMatcher {
	return &matcher.MetadataMatcher{
		Filter: rbacFilter,
		Path: []*matcher.MetadataMatcher_PathSegment{{
			Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: extAuthzPrefix + "shadow_effective_policy_id"},
		}},
		Value: &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
			MatchPattern: &matcher.StringMatcher_Prefix{Prefix: prefix},
		}}},
	}
}

func timeoutOf(d interface{ AsDuration() time.Duration }, set bool) time.Duration {
	if !set {
		return defaultExtAuthzTimeout
	}
	return d.AsDuration()
}

func statusOnError(s string) *typev3.HttpStatus {
	code, err := strconv.Atoi(s)
	if err != nil || code < 100 || code > 599 {
		code = 403
	}
	return &typev3.HttpStatus{Code: typev3.StatusCode(code)}
}

// headerPatterns turns Istio header-name patterns (exact, "p*", "*s") into a
// case-insensitive ListStringMatcher, nil when there are none.
func headerPatterns(names []string) *matcher.ListStringMatcher {
	if len(names) == 0 {
		return nil
	}
	l := &matcher.ListStringMatcher{}
	for _, n := range names {
		m := istioMatch(n)
		if m.kind == matchPresent {
			m = strMatch{kind: matchPrefix}
		}
		sm := stringMatcher(m)
		sm.IgnoreCase = true
		l.Patterns = append(l.Patterns, sm)
	}
	return l
}

func grpcService(p *extProvider, cluster string, timeout time.Duration) *core.GrpcService {
	return &core.GrpcService{
		TargetSpecifier: &core.GrpcService_EnvoyGrpc_{EnvoyGrpc: &core.GrpcService_EnvoyGrpc{
			ClusterName: cluster, Authority: p.host,
		}},
		Timeout: durationpb.New(timeout),
	}
}

// checkHeaders are the request headers sent to an HTTP provider: as Istio's
// generateHTTPConfig (builder/extauthz.go), the deprecated includeHeadersInCheck is
// used only when includeRequestHeadersInCheck is not set.
func checkHeaders(h *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationHttpProvider) []string {
	if names := h.GetIncludeRequestHeadersInCheck(); len(names) > 0 {
		return names
	}
	return h.GetIncludeHeadersInCheck() //nolint:staticcheck // deprecated, read as Istio does
}

// extAuthzHTTPFilter is the ext_authz HTTP filter of a provider.
func (b *filterBuilder) extAuthzHTTPFilter(p *extProvider) *hcm.HttpFilter {
	cfg := &extauthz.ExtAuthz{
		TransportApiVersion:   core.ApiVersion_V3,
		FilterEnabledMetadata: extAuthzEnabled(rbacHTTPFilter, customMatchPrefix(b.in, p.name)),
	}
	cluster := p.clusterName(b.in)
	if h := p.http; h != nil {
		cfg.FailureModeAllow = h.GetFailOpen()
		cfg.StatusOnError = statusOnError(h.GetStatusOnError())
		cfg.ClearRouteCache = h.GetClearRouteCache()
		cfg.AllowedHeaders = headerPatterns(checkHeaders(h))
		req := &extauthz.AuthorizationRequest{}
		for _, k := range slices.Sorted(maps.Keys(h.GetIncludeAdditionalHeadersInCheck())) {
			req.HeadersToAdd = append(req.HeadersToAdd, &core.HeaderValue{Key: k, Value: h.GetIncludeAdditionalHeadersInCheck()[k]})
		}
		svc := &extauthz.HttpService{
			ServerUri: &core.HttpUri{
				Uri:              "http://" + p.host,
				HttpUpstreamType: &core.HttpUri_Cluster{Cluster: cluster},
				Timeout:          durationpb.New(timeoutOf(h.GetTimeout(), h.GetTimeout() != nil)),
			},
			PathPrefix:           h.GetPathPrefix(),
			AuthorizationRequest: req,
			AuthorizationResponse: &extauthz.AuthorizationResponse{
				AllowedUpstreamHeaders:        headerPatterns(h.GetHeadersToUpstreamOnAllow()),
				AllowedClientHeaders:          headerPatterns(h.GetHeadersToDownstreamOnDeny()),
				AllowedClientHeadersOnSuccess: headerPatterns(h.GetHeadersToDownstreamOnAllow()),
			},
		}
		if body := h.GetIncludeRequestBodyInCheck(); body != nil {
			cfg.WithRequestBody = &extauthz.BufferSettings{
				MaxRequestBytes: body.GetMaxRequestBytes(), AllowPartialMessage: body.GetAllowPartialMessage(), PackAsBytes: body.GetPackAsBytes(),
			}
		}
		cfg.Services = &extauthz.ExtAuthz_HttpService{HttpService: svc}
	} else {
		g := p.grpc
		cfg.FailureModeAllow = g.GetFailOpen()
		cfg.StatusOnError = statusOnError(g.GetStatusOnError())
		cfg.ClearRouteCache = g.GetClearRouteCache()
		if body := g.GetIncludeRequestBodyInCheck(); body != nil {
			cfg.WithRequestBody = &extauthz.BufferSettings{
				MaxRequestBytes: body.GetMaxRequestBytes(), AllowPartialMessage: body.GetAllowPartialMessage(), PackAsBytes: body.GetPackAsBytes(),
			}
		}
		cfg.Services = &extauthz.ExtAuthz_GrpcService{GrpcService: grpcService(p, cluster, timeoutOf(g.GetTimeout(), g.GetTimeout() != nil))}
	}
	return &hcm.HttpFilter{Name: extAuthzHTTPFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: b.any(cfg)}}
}

// extAuthzNetworkFilter is the ext_authz network filter of a gRPC provider (HTTP
// providers cannot check TCP connections and are skipped there, as in Istio).
func (b *filterBuilder) extAuthzNetworkFilter(p *extProvider) *listener.Filter {
	g := p.grpc
	cfg := &extauthznet.ExtAuthz{
		StatPrefix:            "tcp.",
		GrpcService:           grpcService(p, p.clusterName(b.in), timeoutOf(g.GetTimeout(), g.GetTimeout() != nil)),
		FailureModeAllow:      g.GetFailOpen(),
		TransportApiVersion:   core.ApiVersion_V3,
		FilterEnabledMetadata: extAuthzEnabled(rbacNetworkFilter, customMatchPrefix(b.in, p.name)),
	}
	return &listener.Filter{Name: extAuthzNetworkFilter, ConfigType: &listener.Filter_TypedConfig{TypedConfig: b.any(cfg)}}
}
