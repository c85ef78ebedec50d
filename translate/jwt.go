package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthn "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	security "istio.io/api/security/v1beta1"

	"github.com/wardenmesh/warden/translate/internal/shared"
	"github.com/wardenmesh/warden/watch"
)

// JWTFilterName is Envoy's JWT authentication HTTP filter. RBAC reads the verified
// payload from its dynamic metadata.
const JWTFilterName = shared.JWTFilterName

// JWTPayloadKey is the dynamic metadata key (under JWTFilterName) holding the
// verified token's payload, as Istio names it: RBAC matches request principals and
// request.auth.* conditions on [payload, <claim>...].
const JWTPayloadKey = shared.JWTPayloadKey

// alwaysSpaceDelimited are the claims whose space-separated string values become
// lists in the payload metadata, on every provider (as Istio does).
var alwaysSpaceDelimited = []string{"scope", "permission"}

// jwtRule is one JWTRule with the policy it came from, for diagnostics.
type jwtRule struct {
	ra    *watch.Config[*security.RequestAuthentication]
	index int
	rule  *security.JWTRule
}

func (r jwtRule) field(suffix string) string {
	return "spec.jwtRules[" + strconv.Itoa(r.index) + "]" + suffix
}

// jwtHTTPFilters is the jwt_authn filter of every RequestAuthentication selecting
// w, merged into one filter: nil when none does. It goes before RBAC in the HCM.
//
// As in Istio, a request without a token passes; a token that fails verification
// gets 401; a policy requires a token with AuthorizationPolicy requestPrincipals.
// Providers are named origins-<i> after sorting the rules by issuer.
func (b *builder) jwtHTTPFilters(w *watch.Workload) []*hcm.HttpFilter {
	rules := b.jwtRules(w)
	rejected := b.rejectedRequestAuthns(w)
	if len(rules) == 0 && len(rejected) == 0 {
		return nil
	}
	cfg := &jwtauthn.JwtAuthentication{
		Providers:           make(map[string]*jwtauthn.JwtProvider, len(rules)+1),
		BypassCorsPreflight: true,
	}
	names := make([]string, 0, len(rules))
	for i, r := range rules {
		name := "origins-" + strconv.Itoa(i)
		cfg.Providers[name] = b.jwtProvider(r, w.Gateway)
		names = append(names, name)
	}
	req := jwtRequirement(names)
	if len(rejected) > 0 {
		// A RequestAuthentication in scope could not be read: its rules are unknown,
		// so no request can be authenticated as it would ask. Every request fails.
		cfg.Providers[failClosedProvider] = failClosedJWTProvider(failClosedIssuer, w.Gateway)
		req = &jwtauthn.JwtRequirement{RequiresType: &jwtauthn.JwtRequirement_ProviderName{ProviderName: failClosedProvider}}
		for _, m := range rejected {
			b.diag(severityError, &m, "", "RequestAuthentication could not be read: every request to "+
				w.Namespace+"/"+w.PodName+" is rejected with 401 until it is fixed")
		}
	}
	cfg.Rules = []*jwtauthn.RequirementRule{{
		Match:           &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		RequirementType: &jwtauthn.RequirementRule_Requires{Requires: req},
	}}
	return []*hcm.HttpFilter{{
		Name:       JWTFilterName,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: b.any(cfg)},
	}}
}

// jwtRequirement accepts a request with no token, or whose tokens all verify against
// one of the providers: any provider alone, or each provider's token (if present).
func jwtRequirement(names []string) *jwtauthn.JwtRequirement {
	provider := func(n string) *jwtauthn.JwtRequirement {
		return &jwtauthn.JwtRequirement{RequiresType: &jwtauthn.JwtRequirement_ProviderName{ProviderName: n}}
	}
	allowMissing := &jwtauthn.JwtRequirement{RequiresType: &jwtauthn.JwtRequirement_AllowMissing{}}
	anyOf := func(rs ...*jwtauthn.JwtRequirement) *jwtauthn.JwtRequirement {
		return &jwtauthn.JwtRequirement{RequiresType: &jwtauthn.JwtRequirement_RequiresAny{
			RequiresAny: &jwtauthn.JwtRequirementOrList{Requirements: rs}}}
	}
	if len(names) == 1 {
		return anyOf(provider(names[0]), allowMissing)
	}
	var alts, each []*jwtauthn.JwtRequirement
	for _, n := range names {
		alts = append(alts, provider(n))
		each = append(each, anyOf(provider(n), allowMissing))
	}
	alts = append(alts, &jwtauthn.JwtRequirement{RequiresType: &jwtauthn.JwtRequirement_RequiresAll{
		RequiresAll: &jwtauthn.JwtRequirementAndList{Requirements: each}}})
	return anyOf(alts...)
}

// jwtProvider translates one JWTRule. A rule Envoy would reject becomes a provider
// for the same issuer that accepts no token, so the listener still loads and only
// that issuer's tokens fail.
func (b *builder) jwtProvider(r jwtRule, gateway bool) *jwtauthn.JwtProvider {
	rule := r.rule
	keys, ok := b.jwtKeys(r)
	if !ok {
		return failClosedJWTProvider(rule.GetIssuer(), gateway)
	}
	p := &jwtauthn.JwtProvider{
		Issuer:               rule.GetIssuer(),
		Audiences:            rule.GetAudiences(),
		JwksSourceSpecifier:  inlineJWKS(keys),
		Forward:              rule.GetForwardOriginalToken(),
		FromParams:           rule.GetFromParams(),
		FromCookies:          rule.GetFromCookies(),
		ForwardPayloadHeader: rule.GetOutputPayloadToHeader(),
		PayloadInMetadata:    JWTPayloadKey,
		NormalizePayloadInMetadata: &jwtauthn.JwtProvider_NormalizePayload{
			SpaceDelimitedClaims: spaceDelimitedClaims(rule.GetSpaceDelimitedClaims()),
		},
		ClearRouteCache: gateway,
	}
	for _, h := range rule.GetFromHeaders() {
		p.FromHeaders = append(p.FromHeaders, &jwtauthn.JwtHeader{Name: h.GetName(), ValuePrefix: h.GetPrefix()})
	}
	for _, c := range rule.GetOutputClaimToHeaders() {
		p.ClaimToHeaders = append(p.ClaimToHeaders, &jwtauthn.JwtClaimToHeader{HeaderName: c.GetHeader(), ClaimName: c.GetClaim()})
	}
	if err := checkHeaderNames(rule); err != nil {
		b.diag(severityError, &r.ra.Meta, r.field(""),
			"rule cannot be translated ("+err.Error()+"): tokens of issuer "+rule.GetIssuer()+" are rejected")
		return failClosedJWTProvider(rule.GetIssuer(), gateway)
	}
	if err := p.ValidateAll(); err != nil {
		b.diag(severityError, &r.ra.Meta, r.field(""),
			"rule cannot be translated ("+err.Error()+"): tokens of issuer "+rule.GetIssuer()+" are rejected")
		return failClosedJWTProvider(rule.GetIssuer(), gateway)
	}
	return p
}

func spaceDelimitedClaims(extra []string) []string {
	out := slices.Concat(alwaysSpaceDelimited, extra)
	slices.Sort(out)
	return slices.Compact(out)
}

// jwtRules are the rules of every RequestAuthentication selecting w, sorted by
// issuer (stable: policy order, then rule order, break ties).
func (b *builder) jwtRules(w *watch.Workload) []jwtRule {
	var out []jwtRule
	for _, ra := range b.in.RequestAuthentications {
		if !b.requestAuthnSelects(ra, w) {
			continue
		}
		for i, r := range ra.Spec.GetJwtRules() {
			out = append(out, jwtRule{ra: ra, index: i, rule: r})
		}
	}
	slices.SortStableFunc(out, func(a, c jwtRule) int { return cmp.Compare(a.rule.GetIssuer(), c.rule.GetIssuer()) })
	return out
}

// requestAuthnSelects applies Istio's attachment rules (attach): a policy without
// selector covers its namespace (the whole mesh in the root namespace); a selector
// picks workloads of its namespace, or of every namespace from the root namespace;
// targetRefs never attach (a warning).
func (b *builder) requestAuthnSelects(ra *raConfig, w *watch.Workload) bool {
	a := attach(b.in.RootNamespace, requestAuthnPolicy(ra), workloadOf(w))
	if a.diag != nil {
		b.diags = append(b.diags, *a.diag)
	}
	return a.attached()
}

// rejectedRequestAuthns are the RequestAuthentications whose scope may include w
// but that were rejected: their selector is unknown, so their whole namespace (the
// mesh, in the root namespace) fails closed (attachRejected).
func (b *builder) rejectedRequestAuthns(w *watch.Workload) []watch.Meta {
	var out []watch.Meta
	wl := workloadOf(w)
	for _, m := range b.in.Rejected {
		if m.Kind == "RequestAuthentication" && attachRejected(b.in.RootNamespace, &m, wl) != ScopeNone {
			out = append(out, m)
		}
	}
	return out
}

// checkHeaderNames rejects header names that are not HTTP tokens (RFC 9110), which
// Envoy's own validation lets through.
func checkHeaderNames(rule *security.JWTRule) error {
	names := []string{rule.GetOutputPayloadToHeader()}
	for _, h := range rule.GetFromHeaders() {
		names = append(names, h.GetName())
	}
	for _, c := range rule.GetOutputClaimToHeaders() {
		names = append(names, c.GetHeader())
	}
	for i, n := range names {
		if n == "" && i == 0 {
			continue // no outputPayloadToHeader
		}
		if !isToken(n) {
			return fmt.Errorf("%q is not a valid header name", n)
		}
	}
	return nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}
