package translate

import (
	"strings"

	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	networking "istio.io/api/networking/v1alpha3"
)

// jwtClaimHeader is the header name prefix a VirtualService match uses to route on
// the claims of the request's verified JWT (Istio pkg/jwt/routing.go HeaderJWTClaim).
const jwtClaimHeader = "@request.auth.claims"

// routingClaim splits a claim header name into the claim path, as Istio's
// jwt.ToRoutingClaim does: "@request.auth.claims.a.b" (dot-separated) or
// "@request.auth.claims[a][b]" (brackets, which allow dots inside a name). The
// prefix is matched without regard to case; the claim names keep theirs. ok is false
// for any other name.
func routingClaim(name string) ([]string, bool) {
	if !strings.HasPrefix(strings.ToLower(name), jwtClaimHeader) {
		return nil, false
	}
	rest := name[len(jwtClaimHeader):]
	switch {
	case strings.HasPrefix(rest, ".") && len(rest) > 1:
		return strings.Split(rest[1:], "."), true
	case strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") && len(rest) > 2:
		return strings.Split(rest[1:len(rest)-1], "]["), true
	}
	return nil, false
}

// claimMatch translates a header match on "@request.auth.claims..." into a match on
// the payload jwt_authn verified and stored in dynamic metadata (Istio route.go
// translateMetadataMatch → authz model MetadataMatcherForJWTClaims: filter
// envoy.filters.http.jwt_authn, path [payload, <claims>...], the value or one item
// of a list equal to it). The gateway's jwt_authn clears the route cache after
// verifying, so the route is chosen on the claims.
//
// ok is false, with an error diagnostic, when the match cannot be honoured: a name
// that is not a claim path (Istio's validation rejects a header name starting with
// "@"), an empty claim name, a match without a value (Istio builds no valid
// matcher), or a gateway no RequestAuthentication selects (no token is ever
// verified there, so no claim exists). The match is then left out: its route is
// never taken through it.
func (b *builder) claimMatch(vs *virtualService, field, name string, v *networking.StringMatch) (*matcher.MetadataMatcher, bool) {
	claims, ok := routingClaim(name)
	if !ok {
		b.diag(severityError, &vs.Meta, field,
			"header names starting with @ must be a JWT claim, "+jwtClaimHeader+".<claim> or "+jwtClaimHeader+"[<claim>][<nested>]: match ignored")
		return nil, false
	}
	for _, c := range claims {
		if c == "" {
			b.diag(severityError, &vs.Meta, field, "empty claim name in "+name+": match ignored")
			return nil, false
		}
	}
	sm := vsStringMatcher(v)
	if sm == nil {
		b.diag(severityError, &vs.Meta, field, "a JWT claim match needs exact, prefix or regex: match ignored")
		return nil, false
	}
	if b.w == nil || (len(b.jwtRules(b.w)) == 0 && len(b.rejectedRequestAuthns(b.w)) == 0) {
		b.diag(severityError, &vs.Meta, field,
			"routing on JWT claims needs a RequestAuthentication selecting this gateway (none verifies tokens here): match ignored")
		return nil, false
	}
	mm := &matcher.MetadataMatcher{Filter: JWTFilterName}
	for _, k := range append([]string{JWTPayloadKey}, claims...) {
		mm.Path = append(mm.Path, &matcher.MetadataMatcher_PathSegment{
			Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: k},
		})
	}
	str := &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: sm}}
	list := &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_ListMatch{ListMatch: &matcher.ListMatcher{
		MatchPattern: &matcher.ListMatcher_OneOf{OneOf: str},
	}}}
	mm.Value = &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_OrMatch{OrMatch: &matcher.OrMatcher{
		ValueMatchers: []*matcher.ValueMatcher{list, str},
	}}}
	return mm, true
}

// metadataPathString orders metadata matchers in a route match.
func metadataPathString(m *matcher.MetadataMatcher) string {
	var sb strings.Builder
	sb.WriteString(m.GetFilter())
	for _, p := range m.GetPath() {
		sb.WriteString("\x00")
		sb.WriteString(p.GetKey())
	}
	if m.GetInvert() {
		sb.WriteString("\x01")
	}
	return sb.String()
}
