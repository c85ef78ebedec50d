package authz

import (
	"net/netip"
	"slices"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Stat prefixes of shadow rules: dry-run results, and the CUSTOM pre-check whose
// metadata enables ext_authz.
const (
	dryRunAllowPrefix = "istio_dry_run_allow_"
	dryRunDenyPrefix  = "istio_dry_run_deny_"
	extAuthzPrefix    = "istio_ext_authz_"
)

// rbacRules is the enforced and shadow RBAC of one action, nil when empty.
type rbacRules struct {
	rules, shadow *rbacv3.RBAC
}

// rbacFor renders the policies of one action. Invalid policies of any action become
// deny-all entries of the DENY rules (shadow entries when dry-run).
func rbacFor(pols []*authzPolicy, action authzAction) rbacRules {
	var out rbacRules
	// CUSTOM rules are shadow rules whose match only enables ext_authz; Istio builds
	// them with RBAC_DENY (builder.go build(customPolicies, RBAC_DENY)).
	envoyAction := map[authzAction]rbacv3.RBAC_Action{
		actionAudit: rbacv3.RBAC_LOG, actionDeny: rbacv3.RBAC_DENY, actionAllow: rbacv3.RBAC_ALLOW, actionCustom: rbacv3.RBAC_DENY,
	}[action]
	add := func(dst **rbacv3.RBAC, key string, pol *rbacv3.Policy) {
		if *dst == nil {
			*dst = &rbacv3.RBAC{Action: envoyAction, Policies: map[string]*rbacv3.Policy{}}
		}
		(*dst).Policies[key] = pol
	}
	for _, p := range pols {
		target := &out.rules
		if p.dryRun {
			target = &out.shadow
		}
		if p.invalid != "" {
			if action == actionDeny {
				add(target, invalidKey(p.meta.Namespace, p.meta.Name), &rbacv3.Policy{
					Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}},
					Principals:  []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Any{Any: true}}},
				})
			}
			continue
		}
		if p.action != action {
			continue
		}
		for i := range p.rules {
			r := &p.rules[i]
			add(target, p.ruleKey(r), rbacPolicy(r))
		}
	}
	// An enforced ALLOW policy whose rules were all dropped (HTTP-only rules on a TCP
	// chain) still makes the filter exist, allowing nothing, as in Istio. With only
	// dry-run ALLOW policies the rules stay unset: nothing is enforced.
	if action == actionAllow && out.rules == nil && out.shadow == nil && hasAction(pols, actionAllow) {
		out.rules = &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW}
	}
	return out
}

// customDenyRules are the rules of CUSTOM policies whose provider is not called, as
// RBAC DENY, named <rule>-deny-due-to-bad-CUSTOM-action (Istio's getBadCustomDenyRules).
func customDenyRules(pols []*authzPolicy) *rbacv3.RBAC {
	out := &rbacv3.RBAC{Action: rbacv3.RBAC_DENY, Policies: map[string]*rbacv3.Policy{}}
	for _, p := range pols {
		for i := range p.rules {
			out.Policies[p.ruleKey(&p.rules[i])+badCustomSuffix] = rbacPolicy(&p.rules[i])
		}
	}
	return out
}

// hasAction reports whether a valid, enforced policy of action exists.
func hasAction(pols []*authzPolicy, action authzAction) bool {
	return slices.ContainsFunc(pols, func(p *authzPolicy) bool {
		return p.action == action && p.invalid == "" && !p.dryRun
	})
}

func rbacPolicy(r *authzRule) *rbacv3.Policy {
	pol := &rbacv3.Policy{}
	for _, p := range r.perms {
		pol.Permissions = append(pol.Permissions, permissionOf(p))
	}
	for _, p := range r.principals {
		pol.Principals = append(pol.Principals, principalOf(p))
	}
	return pol
}

func permissionOf(p *pred) *rbacv3.Permission {
	set := func() *rbacv3.Permission_Set {
		s := &rbacv3.Permission_Set{}
		for _, k := range p.kids {
			s.Rules = append(s.Rules, permissionOf(k))
		}
		return s
	}
	switch p.op {
	case opAny:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: true}}
	case opAnd:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_AndRules{AndRules: set()}}
	case opOr:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_OrRules{OrRules: set()}}
	case opNot:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_NotRule{NotRule: permissionOf(p.kids[0])}}
	}
	l := p.leaf
	switch l.attr {
	case attrHeader:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: headerMatcher(l.name, l.m)}}
	case attrMetadata:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_Metadata{Metadata: metadataMatcher(l)}}
	case attrPath:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcher.PathMatcher{
			Rule: &matcher.PathMatcher_Path{Path: stringMatcher(l.m)},
		}}}
	case attrPathTemplate:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_UriTemplate{UriTemplate: &core.TypedExtensionConfig{
			Name: "uri-template", TypedConfig: l.tmplAny,
		}}}
	case attrDestPort:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: l.port}}
	case attrDestIP:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationIp{DestinationIp: cidrRange(l.prefix)}}
	case attrSNI:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_RequestedServerName{RequestedServerName: stringMatcher(l.m)}}
	}
	panic("translate: principal attribute in a permission")
}

func principalOf(p *pred) *rbacv3.Principal {
	set := func() *rbacv3.Principal_Set {
		s := &rbacv3.Principal_Set{}
		for _, k := range p.kids {
			s.Ids = append(s.Ids, principalOf(k))
		}
		return s
	}
	switch p.op {
	case opAny:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}}
	case opAnd:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: set()}}
	case opOr:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: set()}}
	case opNot:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_NotId{NotId: principalOf(p.kids[0])}}
	}
	l := p.leaf
	switch l.attr {
	case attrPrincipal:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{
			PrincipalName: stringMatcher(l.m),
		}}}
	case attrDirectRemoteIP:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: cidrRange(l.prefix)}}
	case attrRemoteIP:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_RemoteIp{RemoteIp: cidrRange(l.prefix)}}
	case attrHeader:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_Header{Header: headerMatcher(l.name, l.m)}}
	case attrMetadata:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_Metadata{Metadata: metadataMatcher(l)}}
	}
	panic("translate: permission attribute in a principal")
}

// stringMatcher renders m; presence is a non-empty regex.
func stringMatcher(m strMatch) *matcher.StringMatcher {
	sm := &matcher.StringMatcher{IgnoreCase: m.ignoreCase}
	switch m.kind {
	case matchPrefix:
		sm.MatchPattern = &matcher.StringMatcher_Prefix{Prefix: m.value}
	case matchSuffix:
		sm.MatchPattern = &matcher.StringMatcher_Suffix{Suffix: m.value}
	case matchRegex:
		sm.MatchPattern = &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: m.value}}
	case matchPresent:
		sm.MatchPattern = &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: ".+"}}
	default:
		sm.MatchPattern = &matcher.StringMatcher_Exact{Exact: m.value}
	}
	return sm
}

// headerMatcher renders a header comparison; presence is present_match. An empty
// prefix or suffix (e.g. "**") is invalid in Envoy and means presence as well.
func headerMatcher(name string, m strMatch) *route.HeaderMatcher {
	if m.kind == matchPresent || ((m.kind == matchPrefix || m.kind == matchSuffix) && m.value == "") {
		return &route.HeaderMatcher{Name: name, HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}}
	}
	return &route.HeaderMatcher{Name: name, HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: stringMatcher(m)}}
}

func metadataMatcher(l *leaf) *matcher.MetadataMatcher {
	mm := &matcher.MetadataMatcher{Filter: l.name}
	for _, k := range l.path {
		mm.Path = append(mm.Path, &matcher.MetadataMatcher_PathSegment{
			Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: k},
		})
	}
	str := &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: stringMatcher(l.m)}}
	list := &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_ListMatch{ListMatch: &matcher.ListMatcher{
		MatchPattern: &matcher.ListMatcher_OneOf{OneOf: str},
	}}}
	switch l.list {
	case listOnly:
		mm.Value = list
	case listOrItem:
		mm.Value = &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_OrMatch{OrMatch: &matcher.OrMatcher{
			ValueMatchers: []*matcher.ValueMatcher{list, str},
		}}}
	default:
		mm.Value = str
	}
	return mm
}

func cidrRange(p netip.Prefix) *core.CidrRange {
	return &core.CidrRange{AddressPrefix: p.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(p.Bits()))}
}
