package watch

import (
	"fmt"
	"strings"
	"testing"
)

// TestLimits: objects beyond the documented limits are rejected with a diagnostic
// naming the field (issue 12, item 8); objects at the limit are accepted.
func TestLimits(t *testing.T) {
	rules := func(n, values int) string {
		var b strings.Builder
		b.WriteString("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: big, namespace: foo}\nspec:\n  rules:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - from: [{source: {principals: [")
			for j := range values {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "\"cluster.local/ns/foo/sa/s%d-%d\"", i, j)
			}
			b.WriteString("]}}]\n")
		}
		return b.String()
	}
	jwt := func(n int) string {
		var b strings.Builder
		b.WriteString("apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: big, namespace: foo}\nspec:\n  jwtRules:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - {issuer: \"iss-%d\", jwksUri: \"https://example.com/jwks\"}\n", i)
		}
		return b.String()
	}
	vs := func(re string) string {
		return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: foo}\nspec:\n  hosts: [a.example.com]\n" +
			"  gateways: [gw]\n  http:\n  - match: [{headers: {x-a: {exact: b}, x-re: {regex: '" + re + "'}}}]\n    route: [{destination: {host: a}}]\n"
	}
	cases := []struct {
		name, doc, field, msg string
	}{
		{"1000 rules are accepted", rules(MaxAuthorizationRules, 1), "", ""},
		{"1001 rules are rejected", rules(MaxAuthorizationRules+1, 1), "spec.rules", "1001 rules exceed the limit of 1000"},
		{"20000 values are accepted", rules(20, MaxAuthorizationValues/20), "", ""},
		{"20001 values are rejected", rules(1, MaxAuthorizationValues+1), "spec.rules", "20001 values exceed the limit of 20000"},
		{"100 jwt rules are accepted", jwt(MaxJWTRules), "", ""},
		{"101 jwt rules are rejected", jwt(MaxJWTRules + 1), "spec.jwtRules", "101 rules exceed the limit of 100"},
		{"a regex at the limit is accepted", vs(strings.Repeat("a", MaxRegexBytes)), "", ""},
		{"a longer regex is rejected", vs(strings.Repeat("a", MaxRegexBytes+1)), "spec.http[0].match[0].headers[x-re].regex", "regex of 4097 bytes exceeds the limit of 4096"},
		{"an invalid regex is rejected", vs("a(b"), "spec.http[0].match[0].headers[x-re].regex", "invalid RE2 regex"},
		{"a backreference is not RE2", vs(`(a)\1`), "spec.http[0].match[0].headers[x-re].regex", "invalid RE2 regex"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs, diags := DecodeFile("big.yaml", []byte(c.doc))
			var errs []Diagnostic
			for _, d := range diags {
				if d.IsError() {
					errs = append(errs, d)
				}
			}
			if c.field == "" {
				if len(errs) != 0 || len(objs) != 1 {
					t.Fatalf("want accepted, got %d objects, errors %v", len(objs), errs)
				}
				return
			}
			if len(objs) != 0 || len(errs) != 1 || errs[0].Field != c.field || !strings.Contains(errs[0].Message, c.msg) {
				t.Fatalf("want one error at %s containing %q and no object, got %d objects, errors %v", c.field, c.msg, len(objs), errs)
			}
		})
	}
}
