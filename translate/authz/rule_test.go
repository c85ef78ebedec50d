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
