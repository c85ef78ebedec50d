package translate

import (
	"slices"
	"testing"
)

// TestRoutingClaim follows Istio's pkg/jwt/routing.go ToRoutingClaim (and its
// routing_test.go cases): a case-insensitive prefix, "." or "[a][b]" separators,
// nothing after the prefix is not a claim.
func TestRoutingClaim(t *testing.T) {
	cases := []struct {
		name string
		want []string
	}{
		{"@request.auth.claims.group", []string{"group"}},
		{"@request.auth.claims.org.role", []string{"org", "role"}},
		{"@request.auth.claims[org][team.name]", []string{"org", "team.name"}},
		{"@Request.Auth.Claims[Key]", []string{"Key"}},
		{"@request.auth.claims", nil},
		{"@request.auth.claims.", nil},
		{"@request.auth.claims[]", nil},
		{"@request.auth.claims[a", nil},
		{"@request.auth.claim.group", nil},
		{"x-group", nil},
	}
	for _, c := range cases {
		got, ok := routingClaim(c.name)
		if ok != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("routingClaim(%q) = %q, %v; want %q", c.name, got, ok, c.want)
		}
	}
}
