package authz

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/watch"
)

// TestManyPrincipalsMergeShape checks that many exact principals compile to one
// merged regex, with the prefix matcher beside it.
func TestManyPrincipalsMergeShape(t *testing.T) {
	var list []string
	for i := range 50 {
		list = append(list, fmt.Sprintf("%q", fmt.Sprintf("cluster.local/ns/team-%d/sa/caller", i)))
	}
	list = append(list, `"cluster.local/ns/foo/sa/sleep"`, `"prefix*"`)
	doc := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: many, namespace: foo}\n" +
		"spec: {rules: [{from: [{source: {principals: [" + strings.Join(list, ", ") + "]}}]}]}\n"
	objs, diags := watch.DecodeFile("many.yaml", []byte(doc))
	in := watch.Build(objs, diags)
	if len(in.AuthorizationPolicies) != 1 {
		t.Fatalf("want one policy, got %d (%v)", len(in.AuthorizationPolicies), diags)
	}
	set := NewIndex(in).Set(in.AuthorizationPolicies, nil)
	or := set.http[0].rules[0].principals[0].kids[0]
	if len(or.kids) != 2 || or.kids[0].leaf.m.kind != matchRegex || or.kids[1].leaf.m.kind != matchPrefix {
		t.Fatalf("want one merged regex then the prefix matcher, got %d kids", len(or.kids))
	}
}

// TestURITemplate follows istio/istio pkg/config/security/security.go
// CheckValidPathTemplate (only a {*} or {**} after a {**} is invalid; literal
// segments may follow {**}) and pilot/pkg/security/authz/matcher/template_test.go
// TestPathTemplateMatcher ("/foo/{**}/bar" -> path_template "/foo/**/bar",
// "/{*}/foo/{**}/bar" -> "/*/foo/**/bar").
func TestURITemplate(t *testing.T) {
	cases := []struct {
		path, tmpl string
		match      []string
		noMatch    []string
	}{
		{"/store/{**}/cart", "/store/**/cart", []string{"/store/a/cart", "/store/a/b/cart"}, []string{"/store/a/b", "/store/cart/x", "/other/a/cart"}},
		{"/foo/{**}/bar", "/foo/**/bar", []string{"/foo/x/bar"}, []string{"/foo/bar/x"}},
		{"/{*}/foo/{**}/bar", "/*/foo/**/bar", []string{"/a/foo/b/c/bar"}, []string{"/a/b/foo/c/bar"}},
		{"/{*}/{*}/foo/{**}/bar", "/*/*/foo/**/bar", []string{"/a/b/foo/c/bar"}, []string{"/a/foo/c/bar"}},
		{"/files/{**}", "/files/**", []string{"/files/a/b.txt"}, []string{"/other/a"}},
	}
	for _, c := range cases {
		tmpl, re, err := uriTemplate(c.path)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if tmpl != c.tmpl {
			t.Errorf("%s: template %q, want %q", c.path, tmpl, c.tmpl)
		}
		for _, p := range c.match {
			if !re.MatchString(p) {
				t.Errorf("%s: %s does not match", c.path, p)
			}
		}
		for _, p := range c.noMatch {
			if re.MatchString(p) {
				t.Errorf("%s: %s matches", c.path, p)
			}
		}
	}
	for _, bad := range []string{"/a/{**}/{*}", "/a/{**}/b/{**}", "/a/{**}/{**}", "/a/{x}/b", "/a/b{*}"} {
		if _, _, err := uriTemplate(bad); err == nil {
			t.Errorf("%s: accepted, want an error (CheckValidPathTemplate rejects it)", bad)
		}
	}
}

// TestPrincipalLiteralStar checks which principal values keep a "*" in what they
// match, as Istio's StringMatcherWithPrefix (pilot/pkg/security/authz/matcher/string.go)
// reads them: "*" alone is presence, one leading "*" a suffix match, one trailing "*"
// a prefix match (the leading one wins); any other "*" is literal. Each literal one is
// a warning on its field, in sources and in source.principal conditions, and the
// value stays an exact (never matching) principal, as in Istio.
func TestPrincipalLiteralStar(t *testing.T) {
	for v, want := range map[string]bool{
		"*": false, "*/sa/x": false, "cluster.local/*": false, "cluster.local/ns/a/sa/x": false,
		"cluster.local/ns/*/sa/x": true, "*/ns/*": true, "**": true, "a*b*": true,
	} {
		if got := literalStar(v); got != want {
			t.Errorf("literalStar(%q) = %v, want %v", v, got, want)
		}
	}
	doc := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: stars, namespace: foo}\n" +
		"spec: {action: DENY, rules: [{from: [{source: {notPrincipals: [ok/*, \"a/*/b\"]}}], " +
		"when: [{key: source.principal, values: [\"x/*/y\"]}]}]}\n"
	objs, diags := watch.DecodeFile("stars.yaml", []byte(doc))
	in := watch.Build(objs, diags)
	set := NewIndex(in).Set(in.AuthorizationPolicies, nil)
	var fields []string
	for _, n := range set.http[0].notes {
		fields = append(fields, n.field)
	}
	want := "spec.rules[0].from[0].source.notPrincipals[1] spec.rules[0].when[0].values[0]"
	if got := strings.Join(fields, " "); got != want || set.http[0].invalid != "" {
		t.Fatalf("notes on %q (invalid %q), want %q", got, set.http[0].invalid, want)
	}
	if m := spiffeMatch("cluster.local/ns/*/sa/x"); m.kind != matchExact || m.match("spiffe://cluster.local/ns/a/sa/x") {
		t.Fatalf("an inner * is not literal: %+v", m)
	}
}
