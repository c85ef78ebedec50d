package watch

import (
	"maps"
	"reflect"

	"google.golang.org/protobuf/proto"
)

// ObjectRef names one object of an Input: kind, namespace ("" for cluster-scoped
// kinds) and name.
type ObjectRef struct{ Kind, Namespace, Name string }

func (r ObjectRef) String() string { return ref(r.Kind, r.Namespace, r.Name) }

// Changed lists the accepted objects that differ between two Inputs: added, removed, or
// with any difference in metadata (labels, annotations, source position, resource
// version, retention) or spec. It is conservative: an object is reported unless it is
// provably equal (the same decoded value, or an equal one). Derived fields that are
// not objects (trust domain, JWKS, Rejected and Stale lists) are not compared here;
// callers compare them (translate.ChangeScope does).
//
// old or next made without Build (a literal) have no object list; ok is false then and
// the caller must assume everything changed.
//
// moved lists the objects equal in everything but their Source (a document inserted
// above them in a multi-document file), with their new Source: they feed nothing but
// the Source of diagnostics about them.
func Changed(old, next *Input) (changed []ObjectRef, moved map[ObjectRef]Location, ok bool) {
	if old == nil || next == nil || old.index == nil || next.index == nil { // index: made by Build
		return nil, nil, false
	}
	a, b := old.objects, next.objects // both sorted by kind, namespace, name (dedupe)
	for len(a) > 0 || len(b) > 0 {
		var c int
		switch {
		case len(a) == 0:
			c = 1
		case len(b) == 0:
			c = -1
		default:
			c = compareKeys(keyOf(&a[0].Meta), keyOf(&b[0].Meta))
		}
		switch {
		case c < 0:
			changed = append(changed, refOf(&a[0].Meta))
			a = a[1:]
		case c > 0:
			changed = append(changed, refOf(&b[0].Meta))
			b = b[1:]
		default:
			switch {
			case a[0].Source != b[0].Source && sameObject(&a[0], &b[0], b[0].Source):
				if moved == nil {
					moved = map[ObjectRef]Location{}
				}
				moved[refOf(&b[0].Meta)] = b[0].Source
			case !sameObject(&a[0], &b[0], a[0].Source):
				changed = append(changed, refOf(&b[0].Meta))
			}
			a, b = a[1:], b[1:]
		}
	}
	return changed, moved, true
}

func refOf(m *Meta) ObjectRef { return ObjectRef{m.Kind, m.Namespace, m.Name} }

func compareKeys(a, b objectKey) int {
	switch {
	case a.kind != b.kind:
		return cmpString(a.kind, b.kind)
	case a.namespace != b.namespace:
		return cmpString(a.namespace, b.namespace)
	}
	return cmpString(a.name, b.name)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sameObject reports whether two versions of one object are equal in everything
// Build and translation read, with a's Source taken as asSource.
func sameObject(a, b *Object, asSource Location) bool {
	am, bm := &a.Meta, &b.Meta
	if a.Retained != b.Retained || am.Kind != bm.Kind || am.APIVersion != bm.APIVersion || am.Namespace != bm.Namespace ||
		am.Name != bm.Name || am.ResourceVersion != bm.ResourceVersion || am.UID != bm.UID || asSource != bm.Source ||
		am.CreationTimestamp != bm.CreationTimestamp || !maps.Equal(am.Labels, bm.Labels) || !maps.Equal(am.Annotations, bm.Annotations) {
		return false
	}
	if a.Spec == b.Spec {
		return true
	}
	pa, okA := a.Spec.(proto.Message)
	pb, okB := b.Spec.(proto.Message)
	if okA && okB {
		return proto.Equal(pa, pb)
	}
	return reflect.DeepEqual(a.Spec, b.Spec)
}
