package inject

import (
	"encoding/json"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
)

// PatchOp is one RFC 6902 operation.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Patch returns the JSON patch that turns orig into injected: one "add" (which replaces
// an existing member) per changed field the injector writes, in a fixed order, so that
// the API server applies the whole injection or, if the patch fails, none of it.
func Patch(orig, injected *corev1.Pod) ([]byte, error) {
	var ops []PatchOp
	add := func(path string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			ops = append(ops, PatchOp{Op: "add", Path: path, Value: b})
		}
	}
	add("/metadata/labels", orig.Labels, injected.Labels)
	add("/metadata/annotations", orig.Annotations, injected.Annotations)
	add("/spec/initContainers", orig.Spec.InitContainers, injected.Spec.InitContainers)
	add("/spec/containers", orig.Spec.Containers, injected.Spec.Containers)
	add("/spec/volumes", orig.Spec.Volumes, injected.Spec.Volumes)
	// Everything else must be as it was: a field changed here and not patched would be
	// a half-injected pod.
	o, i := orig.DeepCopy(), injected.DeepCopy()
	o.Labels, o.Annotations, o.Spec.InitContainers, o.Spec.Containers, o.Spec.Volumes = nil, nil, nil, nil, nil
	i.Labels, i.Annotations, i.Spec.InitContainers, i.Spec.Containers, i.Spec.Volumes = nil, nil, nil, nil, nil
	if !reflect.DeepEqual(o, i) {
		return nil, fmt.Errorf("inject: the injected pod changes a field the patch does not carry")
	}
	if ops == nil {
		ops = []PatchOp{}
	}
	return json.Marshal(ops)
}
