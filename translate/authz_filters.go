package translate

import (
	"slices"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnet "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"

	"github.com/wardenmesh/warden/watch"
)

// authzPolicies returns the AuthorizationPolicies of the translated workload w,
// resolved once per builder (one builder translates one proxy); nil without one.
func (b *builder) authzPolicies(w *watch.Workload) *authzSet {
	if b.authz == nil && w != nil {
		b.authz = b.x.authz.selectAuthz(w)
		b.diags = append(b.diags, b.authz.diags...)
	}
	return b.authz
}

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

// authzHTTPFilters returns the CUSTOM filters (per provider: a shadow RBAC filter
// that records whether a CUSTOM rule matched, then ext_authz) and the RBAC filters
// AUDIT, DENY, ALLOW, for an HTTP chain.
func (b *builder) authzHTTPFilters(w *watch.Workload) (custom, rbac []*hcm.HttpFilter) {
	set := b.authzPolicies(w)
	if set == nil || set.empty() {
		return nil, nil
	}
	b.diags = append(b.diags, policyDiags(set.http)...)
	for _, name := range customProviders(set.http) {
		p, _ := findProvider(b.in, name)
		pre := b.rbacFor(ofProvider(set.http, name), actionCustom)
		custom = append(custom,
			b.rbacHTTPFilter(&rbachttp.RBAC{ShadowRules: pre.rules, ShadowRulesStatPrefix: extAuthzPrefix}),
			b.extAuthzHTTPFilter(p))
	}
	for _, a := range []authzAction{actionAudit, actionDeny, actionAllow} {
		r := b.rbacFor(set.http, a)
		if r.rules == nil && r.shadow == nil {
			continue
		}
		cfg := &rbachttp.RBAC{Rules: r.rules, ShadowRules: r.shadow}
		if r.shadow != nil {
			cfg.ShadowRulesStatPrefix = dryRunPrefix(a)
		}
		rbac = append(rbac, b.rbacHTTPFilter(cfg))
	}
	return custom, rbac
}

func dryRunPrefix(a authzAction) string {
	if a == actionAllow {
		return dryRunAllowPrefix
	}
	return dryRunDenyPrefix
}

func (b *builder) rbacHTTPFilter(cfg *rbachttp.RBAC) *hcm.HttpFilter {
	return &hcm.HttpFilter{Name: rbacHTTPFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: b.any(cfg)}}
}

// authzNetworkFilters are the filters before tcp_proxy on a TCP chain: CUSTOM for
// gRPC providers, then RBAC AUDIT, DENY, ALLOW, with the TCP form of each policy.
func (b *builder) authzNetworkFilters(statPrefix string) []*listener.Filter {
	set := b.authzPolicies(b.w)
	if set == nil || set.empty() {
		return nil
	}
	b.diags = append(b.diags, policyDiags(set.tcp)...)
	var out []*listener.Filter
	for _, name := range customProviders(set.tcp) {
		p, _ := findProvider(b.in, name)
		if p.grpc == nil {
			continue
		}
		pre := b.rbacFor(ofProvider(set.tcp, name), actionCustom)
		out = append(out,
			b.rbacNetworkFilter(&rbacnet.RBAC{StatPrefix: statPrefix, ShadowRules: pre.rules, ShadowRulesStatPrefix: extAuthzPrefix}),
			b.extAuthzNetworkFilter(p))
	}
	for _, a := range []authzAction{actionAudit, actionDeny, actionAllow} {
		r := b.rbacFor(set.tcp, a)
		if r.rules == nil && r.shadow == nil {
			continue
		}
		cfg := &rbacnet.RBAC{StatPrefix: statPrefix, Rules: r.rules, ShadowRules: r.shadow}
		if r.shadow != nil {
			cfg.ShadowRulesStatPrefix = dryRunPrefix(a)
		}
		out = append(out, b.rbacNetworkFilter(cfg))
	}
	return out
}

func (b *builder) rbacNetworkFilter(cfg *rbacnet.RBAC) *listener.Filter {
	return &listener.Filter{Name: rbacNetworkFilter, ConfigType: &listener.Filter_TypedConfig{TypedConfig: b.any(cfg)}}
}

// extAuthzClusters are the clusters the proxy's CUSTOM providers need that no Service
// provides.
func (b *builder) extAuthzClusters() []*cluster.Cluster {
	set := b.authzPolicies(b.w)
	if set == nil {
		return nil
	}
	var out []*cluster.Cluster
	for _, name := range customProviders(set.http) {
		p, _ := findProvider(b.in, name)
		if c := b.providerCluster(p); c != nil {
			out = append(out, c)
		}
	}
	return out
}

// withAuthz prepends the authorization filters to the filters of a TCP chain.
func (b *builder) withAuthz(statPrefix string, filters []*listener.Filter) []*listener.Filter {
	authz := b.authzNetworkFilters(statPrefix)
	if len(authz) == 0 {
		return filters
	}
	return append(authz, filters...)
}
