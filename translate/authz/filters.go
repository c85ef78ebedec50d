package authz

import (
	"fmt"
	"slices"
	"strings"

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

// customProviders lists, sorted, the providers of the CUSTOM policies that are not
// invalid (a provider that cannot be used included).
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

// customGroup is the CUSTOM policies of one provider on one workload. When deny is
// set the provider is not called: the rules deny what they match (RBAC DENY), as
// Istio's buildHTTP/buildTCP do with getBadCustomDenyRules.
type customGroup struct {
	provider string
	pols     []*authzPolicy
	deny     string // why the rules deny; "" when ext_authz enforces them
	grpc     bool
}

// customGroups groups the CUSTOM policies by provider, sorted by provider. Without
// PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS a workload with several providers
// cannot safely pick one, so every group denies (builder.go: "multiple CUSTOM
// authorization providers per workload requires PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS",
// golden custom-bad-multiple-providers-out1.yaml); a provider that cannot be used
// denies its own group (golden custom-bad-out.yaml).
func customGroups(in *watch.Input, pols []*authzPolicy) []customGroup {
	providers := customProviders(pols)
	multi := ""
	if len(providers) > 1 && !in.MultipleCustomAuthzProviders {
		multi = fmt.Sprintf("this workload has %d CUSTOM providers (%s); several providers per workload need data.%s: \"true\" in the mesh ConfigMap (istiod's environment variable of that name)",
			len(providers), strings.Join(providers, ", "), watch.MultipleCustomAuthzProvidersKey)
	}
	out := make([]customGroup, 0, len(providers))
	for _, name := range providers {
		g := customGroup{provider: name, pols: ofProvider(pols, name), deny: multi}
		g.grpc = g.pols[0].grpcProvider
		if bad := g.pols[0].badProvider; bad != "" && g.deny != "" {
			g.deny += "; " + bad
		} else if bad != "" {
			g.deny = bad
		}
		out = append(out, g)
	}
	return out
}

// customDiags say, per CUSTOM policy of a group that denies, what happens instead.
func customDiags(groups []customGroup) []watch.Diagnostic {
	var out []watch.Diagnostic
	for _, g := range groups {
		if g.deny == "" {
			continue
		}
		for _, p := range g.pols {
			field := ""
			if p.badProvider != "" {
				field = "spec.provider.name"
			}
			out = append(out, watch.DiagnosticFor(p.meta, severityError, field, g.deny+
				": the provider is not called and the requests this policy's rules match are denied (RBAC DENY), as in Istio"))
		}
	}
	return out
}

// HTTPFilters returns, for an HTTP chain, the CUSTOM filters (per provider: a shadow
// RBAC filter that records whether a CUSTOM rule matched, then ext_authz; or, when
// the provider cannot be used, an RBAC DENY filter of its rules) and the RBAC
// filters AUDIT, DENY, ALLOW, with the diagnostics of the policies. Istio's filter
// order puts jwt_authn between the two groups.
func (s *Set) HTTPFilters(in *watch.Input) (custom, rbac []*hcm.HttpFilter, diags []watch.Diagnostic, err error) {
	if s.Empty() {
		return nil, nil, nil, nil
	}
	b := &filterBuilder{in: in}
	groups := customGroups(in, s.http)
	diags = append(policyDiags(s.http), customDiags(groups)...)
	for _, g := range groups {
		if g.deny != "" {
			custom = append(custom, b.rbacHTTPFilter(&rbachttp.RBAC{Rules: customDenyRules(g.pols)}))
			continue
		}
		p, _ := findProvider(in, g.provider)
		pre := rbacFor(g.pols, actionCustom)
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
// providers (RBAC DENY for providers that cannot be used, HTTP or gRPC), then RBAC
// AUDIT, DENY, ALLOW, with the TCP form of each policy, and the
// diagnostics of those policies.
func (s *Set) NetworkFilters(in *watch.Input, statPrefix string) ([]*listener.Filter, []watch.Diagnostic, error) {
	if s.Empty() {
		return nil, nil, nil
	}
	b := &filterBuilder{in: in}
	groups := customGroups(in, s.tcp)
	diags := append(policyDiags(s.tcp), customDiags(groups)...)
	var out []*listener.Filter
	for _, g := range groups {
		if g.deny != "" {
			out = append(out, b.rbacNetworkFilter(&rbacnet.RBAC{StatPrefix: statPrefix, Rules: customDenyRules(g.pols)}))
			continue
		}
		if !g.grpc {
			continue // an HTTP provider cannot check TCP connections; Istio skips it
		}
		p, _ := findProvider(in, g.provider)
		pre := rbacFor(g.pols, actionCustom)
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
	for _, g := range customGroups(in, s.http) {
		if g.deny != "" {
			continue
		}
		p, _ := findProvider(in, g.provider)
		if p.http != nil && p.svc != nil {
			continue // the Service's outbound cluster
		}
		out = append(out, ProviderCluster{Name: p.clusterName(in), Host: p.host, Port: p.port,
			Service: p.svc, ServicePort: p.sport, GRPC: p.grpc != nil})
	}
	return out
}
