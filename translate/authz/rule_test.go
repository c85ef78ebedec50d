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
