package authz

import (
	"slices"

	"github.com/wardenmesh/warden/internal/protoany"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnet "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wardenmesh/warden/watch"
)

// filterBuilder renders the filters of one Set; the first marshalling error is kept.
type filterBuilder struct {
	in  *watch.Input
	err error
}

func (b *filterBuilder) any(msg proto.Message) *anypb.Any { return protoany.Must(&b.err, msg) }

// customProviders lists, sorted, the providers of the valid CUSTOM policies.
func customProviders(pols []*authzPolicy) []string {
	var out []string
	for _, p := range pols {
		if p.action == actionCustom && p.invalid == "" && !slices.Contains(out, p.provider) {
			out = append(out, p.provider)
		}
	}
	slices.Sort(out)
	return out
}

func ofProvider(pols []*authzPolicy, provider string) []*authzPolicy {
	var out []*authzPolicy
	for _, p := range pols {
		if p.action == actionCustom && p.invalid == "" && p.provider == provider {
			out = append(out, p)
		}
	}
	return out
}

// HTTPFilters returns, for an HTTP chain, the CUSTOM filters (per provider: a shadow
// RBAC filter that records whether a CUSTOM rule matched, then ext_authz) and the
// RBAC filters AUDIT, DENY, ALLOW, with the diagnostics of the policies. Istio's
// filter order puts jwt_authn between the two groups.
func (s *Set) HTTPFilters(in *watch.Input) (custom, rbac []*hcm.HttpFilter, diags []watch.Diagnostic, err error) {
	if s.Empty() {
		return nil, nil, nil, nil
	}
	b := &filterBuilder{in: in}
	diags = policyDiags(s.http)
	for _, name := range customProviders(s.http) {
		p, _ := findProvider(in, name)
		pre := rbacFor(ofProvider(s.http, name), actionCustom)
		custom = append(custom,
			b.rbacHTTPFilter(&rbachttp.RBAC{ShadowRules: pre.rules, ShadowRulesStatPrefix: extAuthzPrefix}),
			b.extAuthzHTTPFilter(p))
	}
	for _, a := range []authzAction{actionAudit, actionDeny, actionAllow} {
		r := rbacFor(s.http, a)
		if r.rules == nil && r.shadow == nil {
			continue
		}
		cfg := &rbachttp.RBAC{Rules: r.rules, ShadowRules: r.shadow}
		if r.shadow != nil {
			cfg.ShadowRulesStatPrefix = dryRunPrefix(a)
		}
		rbac = append(rbac, b.rbacHTTPFilter(cfg))
	}
	return custom, rbac, diags, b.err
}

func dryRunPrefix(a authzAction) string {
	if a == actionAllow {
		return dryRunAllowPrefix
	}
	return dryRunDenyPrefix
}

func (b *filterBuilder) rbacHTTPFilter(cfg *rbachttp.RBAC) *hcm.HttpFilter {
	return &hcm.HttpFilter{Name: rbacHTTPFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: b.any(cfg)}}
}

// NetworkFilters are the filters before tcp_proxy on a TCP chain: CUSTOM for gRPC
// providers, then RBAC AUDIT, DENY, ALLOW, with the TCP form of each policy, and the
// diagnostics of those policies.
func (s *Set) NetworkFilters(in *watch.Input, statPrefix string) ([]*listener.Filter, []watch.Diagnostic, error) {
	if s.Empty() {
		return nil, nil, nil
	}
	b := &filterBuilder{in: in}
	diags := policyDiags(s.tcp)
	var out []*listener.Filter
	for _, name := range customProviders(s.tcp) {
		p, _ := findProvider(in, name)
		if p.grpc == nil {
			continue
		}
		pre := rbacFor(ofProvider(s.tcp, name), actionCustom)
		out = append(out,
			b.rbacNetworkFilter(&rbacnet.RBAC{StatPrefix: statPrefix, ShadowRules: pre.rules, ShadowRulesStatPrefix: extAuthzPrefix}),
			b.extAuthzNetworkFilter(p))
	}
	for _, a := range []authzAction{actionAudit, actionDeny, actionAllow} {
		r := rbacFor(s.tcp, a)
		if r.rules == nil && r.shadow == nil {
			continue
		}
		cfg := &rbacnet.RBAC{StatPrefix: statPrefix, Rules: r.rules, ShadowRules: r.shadow}
		if r.shadow != nil {
			cfg.ShadowRulesStatPrefix = dryRunPrefix(a)
		}
		out = append(out, b.rbacNetworkFilter(cfg))
	}
	return out, diags, b.err
}

func (b *filterBuilder) rbacNetworkFilter(cfg *rbacnet.RBAC) *listener.Filter {
	return &listener.Filter{Name: rbacNetworkFilter, ConfigType: &listener.Filter_TypedConfig{TypedConfig: b.any(cfg)}}
}

// ProviderCluster is a cluster that a CUSTOM provider of a Set needs and that no
// Service's outbound cluster provides; translate builds it.
type ProviderCluster struct {
	Name string
	Host string // an IP, or a name Envoy resolves (STRICT_DNS)
	Port uint32
	// Service is the mesh Service behind a gRPC provider (endpoints from its EDS
	// resource, with auto mTLS), nil for a provider outside the mesh.
	Service     *watch.Service
	ServicePort watch.ServicePort
	GRPC        bool // the cluster speaks HTTP/2
}

// ProviderClusters lists the clusters the Set's CUSTOM providers need.
func (s *Set) ProviderClusters(in *watch.Input) []ProviderCluster {
	if s == nil {
		return nil
	}
	var out []ProviderCluster
	for _, name := range customProviders(s.http) {
		p, _ := findProvider(in, name)
		if p.http != nil && p.svc != nil {
			continue // the Service's outbound cluster
		}
		out = append(out, ProviderCluster{Name: p.clusterName(in), Host: p.host, Port: p.port,
			Service: p.svc, ServicePort: p.sport, GRPC: p.grpc != nil})
	}
	return out
}
