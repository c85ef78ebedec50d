package kube

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wardenmesh/warden/watch"
)

// objectRef names an object the way diagnostics do.
type objectRef struct{ kind, namespace, name string }

// decoded is the result of decoding one version of one API object.
type decoded struct {
	resourceVersion string
	objs            []watch.Object
	diags           []watch.Diagnostic
	ref             corev1.ObjectReference
}

// decoder turns cached API objects into watch.Objects through watch.DecodeFile, the
// directory-mode decoder, and remembers the result per object version so that a
// rebuild only decodes what changed. It is used by one goroutine.
type decoder struct {
	byUID map[types.UID]decoded
}

func newDecoder() *decoder { return &decoder{byUID: map[types.UID]decoded{}} }

// snapshot decodes every object in the informers' caches. refs maps each object (by
// kind, namespace and name) to a reference for Events.
func (d *decoder) snapshot(infs []informer) (objs []watch.Object, diags []watch.Diagnostic, refs map[objectRef]corev1.ObjectReference) {
	refs = map[objectRef]corev1.ObjectReference{}
	seen := map[types.UID]bool{}
	for _, inf := range infs {
		for _, item := range inf.informer.GetStore().List() {
			dec := d.decode(inf, item)
			seen[dec.ref.UID] = true
			objs = append(objs, dec.objs...)
			diags = append(diags, dec.diags...)
			refs[objectRef{dec.ref.Kind, dec.ref.Namespace, dec.ref.Name}] = dec.ref
		}
	}
	for uid := range d.byUID {
		if !seen[uid] {
			delete(d.byUID, uid)
		}
	}
	return objs, diags, refs
}

// decode returns the decoded form of one cached object, from the memo when its
// resourceVersion is unchanged.
func (d *decoder) decode(inf informer, item any) decoded {
	m, err := meta.Accessor(item)
	if err != nil { // not an API object: cannot happen with these informers
		return decoded{diags: []watch.Diagnostic{watch.DiagnosticFor(&watch.Meta{Kind: inf.gvk.Kind}, watch.SeverityError, "",
			fmt.Sprintf("cached %s is not an API object: %v", inf.name, err))}}
	}
	if prev, ok := d.byUID[m.GetUID()]; ok && prev.resourceVersion == m.GetResourceVersion() && m.GetResourceVersion() != "" {
		return prev
	}
	ref := corev1.ObjectReference{
		APIVersion: inf.gvk.GroupVersion().String(), Kind: inf.gvk.Kind,
		Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(), ResourceVersion: m.GetResourceVersion(),
	}
	dec := decoded{resourceVersion: m.GetResourceVersion(), ref: ref}
	data, err := encode(inf, item)
	if err != nil {
		dec.diags = []watch.Diagnostic{watch.DiagnosticFor(&watch.Meta{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name},
			watch.SeverityError, "", err.Error())}
	} else {
		// The same decoder as a YAML file in directory mode; an empty path marks the
		// API server as the source.
		dec.objs, dec.diags = watch.DecodeFile("", data)
	}
	d.byUID[m.GetUID()] = dec
	return dec
}

// encode renders a cached object as the JSON a user would have applied, with its
// apiVersion and kind (typed informers drop them).
func encode(inf informer, item any) ([]byte, error) {
	obj, ok := item.(runtime.Object)
	if !ok {
		return nil, fmt.Errorf("cached %s has type %T", inf.name, item)
	}
	obj = obj.DeepCopyObject()
	obj.GetObjectKind().SetGroupVersionKind(inf.gvk)
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", inf.gvk.Kind, err)
	}
	return data, nil
}
