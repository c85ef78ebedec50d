package watch

import (
	"reflect"
	"testing"
)

func TestChangedListsOnlyWhatDiffers(t *testing.T) {
	build := func(docs string) *Input {
		objs, diags := DecodeFile("m.yaml", []byte(docs))
		return Build(objs, diags)
	}
	ns := "apiVersion: v1\nkind: Namespace\nmetadata: {name: foo}\n---\n"
	ap := func(name, action string) string {
		return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " + name + ", namespace: foo}\nspec: {action: " + action + "}\n---\n"
	}
	old := build(ns + ap("a", "ALLOW") + ap("b", "DENY"))
	for _, c := range []struct {
		name  string
		next  *Input
		want  []ObjectRef
		moved []ObjectRef
	}{
		{"same manifests re-decoded", build(ns + ap("a", "ALLOW") + ap("b", "DENY")), nil, nil},
		{"one spec changed", build(ns + ap("a", "DENY") + ap("b", "DENY")), []ObjectRef{{"AuthorizationPolicy", "foo", "a"}}, nil},
		{"one added above the others: they only moved", build(ns + ap("a0", "ALLOW") + ap("a", "ALLOW") + ap("b", "DENY")),
			[]ObjectRef{{"AuthorizationPolicy", "foo", "a0"}}, []ObjectRef{{"AuthorizationPolicy", "foo", "a"}, {"AuthorizationPolicy", "foo", "b"}}},
		{"one removed", build(ns + ap("a", "ALLOW")), []ObjectRef{{"AuthorizationPolicy", "foo", "b"}}, nil},
	} {
		got, moved, ok := Changed(old, c.next)
		if !ok {
			t.Fatalf("%s: not comparable", c.name)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: changed %v, want %v", c.name, got, c.want)
		}
		var mv []ObjectRef
		for _, r := range c.moved {
			if _, ok := moved[r]; !ok {
				t.Errorf("%s: %v not reported moved (moved: %v)", c.name, r, moved)
			}
			mv = append(mv, r)
		}
		if len(moved) != len(mv) {
			t.Errorf("%s: moved %v, want %v", c.name, moved, mv)
		}
	}
	if _, _, ok := Changed(old, &Input{}); ok {
		t.Error("an Input not made by Build must not be comparable")
	}
}

// sameObject compares Meta field by field; a new field must be added there.
func TestSameObjectComparesEveryMetaField(t *testing.T) {
	if n := reflect.TypeFor[Meta]().NumField(); n != 10 {
		t.Fatalf("Meta has %d fields; sameObject compares 10: compare the new one too", n)
	}
}
