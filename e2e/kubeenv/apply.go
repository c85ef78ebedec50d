package kubeenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	sigyaml "sigs.k8s.io/yaml"
)

// FieldManager owns the fields the tests apply.
const FieldManager = "warden-e2e"

// Apply server-side applies every object of yamlDocs (YAML or JSON, several documents,
// `kind: List` allowed), in order, as FieldManager with conflicts forced, like
// `kubectl apply --server-side --force-conflicts`. A namespaced object without a
// namespace goes to "default". Objects of a kind whose CRD was applied just before wait
// (up to 30 s) until the API server serves it.
func (e *Env) Apply(ctx context.Context, yamlDocs []byte) error {
	_, err := e.ApplyAll(ctx, yamlDocs)
	return err
}

// ApplyAll is Apply, and returns every applied object as the API server stored it
// (with what it set, such as a Service's clusterIP), in order.
func (e *Env) ApplyAll(ctx context.Context, yamlDocs []byte) ([]*unstructured.Unstructured, error) {
	objs, err := parseObjects(yamlDocs)
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, u := range objs {
		got, err := e.applyOne(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, got)
	}
	return out, nil
}

// ApplyFiles applies the manifests in each path (a file, or a folder whose *.yaml,
// *.yml and *.json files are applied in lexical order, not recursively).
func (e *Env) ApplyFiles(ctx context.Context, paths ...string) error {
	for _, p := range paths {
		files, err := manifestFiles(p)
		if err != nil {
			return err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if err := e.Apply(ctx, data); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	return nil
}

func manifestFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, en := range entries {
		ext := filepath.Ext(en.Name())
		if !en.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
			out = append(out, filepath.Join(path, en.Name()))
		}
	}
	slices.Sort(out)
	return out, nil
}

func parseObjects(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 0; ; doc++ {
		chunk, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		js, err := sigyaml.YAMLToJSON(chunk)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if t := strings.TrimSpace(string(js)); t == "" || t == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if u.IsList() {
			err := u.EachListItem(func(o runtime.Object) error {
				out = append(out, o.(*unstructured.Unstructured))
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", doc, err)
			}
			continue
		}
		out = append(out, u)
	}
}

func (e *Env) applyOne(ctx context.Context, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := u.GroupVersionKind()
	ri, err := e.resourceFor(ctx, gvk.GroupKind(), gvk.Version, u.GetNamespace())
	if err != nil {
		return nil, fmt.Errorf("apply %s %s: %w", gvk.Kind, u.GetName(), err)
	}
	got, err := ri.namespaced(u).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return nil, fmt.Errorf("apply %s %s/%s: %w", gvk.Kind, u.GetNamespace(), u.GetName(), err)
	}
	return got, nil
}

// resource is a resolved kind: the client for it and whether it is namespaced.
type resource struct {
	client    dynamic.NamespaceableResourceInterface
	isNS      bool
	namespace string
}

func (r resource) namespaced(u *unstructured.Unstructured) dynamic.ResourceInterface {
	if !r.isNS {
		u.SetNamespace("")
		return r.client
	}
	if u.GetNamespace() == "" {
		u.SetNamespace(r.namespace)
	}
	return r.client.Namespace(u.GetNamespace())
}

// resourceFor maps a kind (version optional) to its resource, refreshing discovery
// while a just-created CRD is not served yet.
func (e *Env) resourceFor(ctx context.Context, gk schema.GroupKind, version, namespace string) (resource, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var versions []string
	if version != "" {
		versions = []string{version}
	}
	for {
		m, err := e.mapper.RESTMapping(gk, versions...)
		if err == nil {
			if namespace == "" {
				namespace = "default"
			}
			return resource{client: e.Dynamic.Resource(m.Resource), isNS: m.Scope.Name() == meta.RESTScopeNameNamespace,
				namespace: namespace}, nil
		}
		if !meta.IsNoMatchError(err) {
			return resource{}, err
		}
		e.mapper.Reset()
		select {
		case <-ctx.Done():
			return resource{}, fmt.Errorf("kind %s is not served: %w", gk, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Delete deletes one object. kind is "Kind" when unambiguous (PeerAuthentication,
// Pod) or "Kind.group" (Gateway.networking.istio.io); namespace is ignored for
// cluster-scoped kinds. A missing object is not an error.
func (e *Env) Delete(ctx context.Context, kind, namespace, name string) error {
	gk, err := e.groupKind(ctx, kind)
	if err != nil {
		return err
	}
	ri, err := e.resourceFor(ctx, gk, "", namespace)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", kind, name, err)
	}
	var c dynamic.ResourceInterface = ri.client
	if ri.isNS {
		c = ri.client.Namespace(ri.namespace)
	}
	err = c.Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s %s/%s: %w", kind, namespace, name, err)
	}
	if gk == (schema.GroupKind{Kind: "Namespace"}) {
		return e.finalizeNamespace(ctx, name)
	}
	return nil
}

// groupKind resolves "Kind" or "Kind.group" using discovery.
func (e *Env) groupKind(ctx context.Context, kind string) (schema.GroupKind, error) {
	if k, group, ok := strings.Cut(kind, "."); ok {
		return schema.GroupKind{Group: group, Kind: k}, nil
	}
	lists, err := e.Client.Discovery().ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return schema.GroupKind{}, fmt.Errorf("discovery: %w", err)
	}
	var found []schema.GroupKind
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if r.Kind == kind && !strings.Contains(r.Name, "/") {
				found = append(found, schema.GroupKind{Group: gv.Group, Kind: kind})
			}
		}
	}
	switch len(found) {
	case 0:
		return schema.GroupKind{}, fmt.Errorf("kind %s is not served", kind)
	case 1:
		return found[0], nil
	}
	return schema.GroupKind{}, fmt.Errorf("kind %s is ambiguous (%v): use Kind.group", kind, found)
}
