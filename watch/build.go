package watch

import (
	"cmp"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
)

// Build assembles one immutable Input from decoded objects and the diagnostics of
// decoding them. It is deterministic: the same objects give the same Input and Version
// whatever their order, except that when two objects share kind, namespace and name
// the first one wins (and the other is reported). Input.Mesh is never nil and the root
// namespace, and every namespace an object lives in, always exists.
func Build(objs []Object, diags []Diagnostic) *Input {
	in := &Input{Diagnostics: slices.Clone(diags)}
	in.objects = dedupe(objs, &in.Diagnostics)

	in.Mesh = meshOf(in.objects, &in.Diagnostics)
	in.MultipleCustomAuthzProviders = meshFlagOf(in.objects, MultipleCustomAuthzProvidersKey, &in.Diagnostics)
	in.RootNamespace = in.Mesh.GetRootNamespace()
	in.TrustDomain = in.Mesh.GetTrustDomain()
	in.DomainSuffix = DefaultDomainSuffix

	in.Namespaces = namespacesOf(in.objects, in.RootNamespace)
	in.ServiceAccounts = serviceAccountsOf(in.objects, in.Namespaces)
	in.Workloads = workloadsOf(in.objects, in.Namespaces)
	in.Services = servicesOf(in.objects)
	in.EndpointSlices = endpointSlicesOf(in.objects)

	in.PeerAuthentications = configsOf[*security.PeerAuthentication](in.objects)
	warnConflictingPeerAuthentications(in.PeerAuthentications, in.RootNamespace, &in.Diagnostics)
	in.RequestAuthentications = configsOf[*security.RequestAuthentication](in.objects)
	in.AuthorizationPolicies = configsOf[*security.AuthorizationPolicy](in.objects)
	in.DestinationRules = configsOf[*networking.DestinationRule](in.objects)
	in.Gateways = configsOf[*networking.Gateway](in.objects)
	in.VirtualServices = configsOf[*networking.VirtualService](in.objects)
	in.ServiceEntries = configsOf[*networking.ServiceEntry](in.objects)

	slices.SortStableFunc(in.Diagnostics, compareDiagnostics)
	in.Diagnostics = slices.Compact(in.Diagnostics)
	in.Rejected, in.Stale = rejectedAndStale(in.objects, in.Diagnostics)
	in.Version = version(in.objects)
	in.index = newIndex(in)
	return in
}

// dedupe keeps the first object of each kind/namespace/name and sorts the result by
// that key.
func dedupe(objs []Object, diags *[]Diagnostic) []Object {
	seen := make(map[objectKey]Location, len(objs))
	out := make([]Object, 0, len(objs))
	for _, o := range objs {
		k := keyOf(&o.Meta)
		if first, dup := seen[k]; dup {
			msg := fmt.Sprintf("already defined at %s; this definition is ignored", first)
			*diags = append(*diags, DiagnosticFor(&o.Meta, SeverityError, "", msg))
			continue
		}
		seen[k] = o.Source
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b Object) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// meshOf decodes the mesh ConfigMap, if any; defaults otherwise.
func meshOf(objs []Object, diags *[]Diagnostic) *meshv1alpha1.MeshConfig {
	for _, o := range objs {
		cm, ok := o.Spec.(*corev1.ConfigMap)
		if !ok || !isMeshConfigMap(&o.Meta) {
			continue
		}
		mc, fe := decodeMesh(cm.Data[meshDataKey])
		if fe != nil {
			*diags = append(*diags, DiagnosticFor(&o.Meta, SeverityError, fe.Field, fe.Message+"; using the default mesh config"))
			break
		}
		return mc
	}
	return DefaultMeshConfig()
}

// meshFlagOf reads a boolean data key of the mesh ConfigMap; a bad value is an error
// and reads as false.
func meshFlagOf(objs []Object, key string, diags *[]Diagnostic) bool {
	for _, o := range objs {
		cm, ok := o.Spec.(*corev1.ConfigMap)
		if !ok || !isMeshConfigMap(&o.Meta) {
			continue
		}
		v, fe := decodeMeshFlag(cm.Data, key)
		if fe != nil {
			*diags = append(*diags, DiagnosticFor(&o.Meta, SeverityError, fe.Field, fe.Message+"; using false"))
		}
		return v
	}
	return false
}

func namespacesOf(objs []Object, root string) map[string]*Namespace {
	out := make(map[string]*Namespace)
	for _, o := range objs {
		if _, ok := o.Spec.(*corev1.Namespace); ok {
			out[o.Name] = &Namespace{Meta: o.Meta}
		}
	}
	implicit := func(name string) {
		if _, ok := out[name]; !ok && name != "" {
			out[name] = &Namespace{Meta: Meta{Kind: "Namespace", APIVersion: "v1", Name: name}}
		}
	}
	implicit(root)
	for _, o := range objs {
		implicit(o.Namespace)
	}
	return out
}

// serviceAccountsOf lists declared ServiceAccounts plus each namespace's "default",
// which Kubernetes creates.
func serviceAccountsOf(objs []Object, namespaces map[string]*Namespace) map[string]bool {
	out := make(map[string]bool)
	for ns := range namespaces {
		out[ns+"/default"] = true
	}
	for _, o := range objs {
		if _, ok := o.Spec.(*corev1.ServiceAccount); ok {
			out[o.Key()] = true
		}
	}
	return out
}

func workloadsOf(objs []Object, namespaces map[string]*Namespace) []*Workload {
	var out []*Workload
	for _, o := range objs {
		var nsLabels map[string]string
		if ns := namespaces[o.Namespace]; ns != nil {
			nsLabels = ns.Labels
		}
		switch s := o.Spec.(type) {
		case *appsv1.Deployment:
			out = append(out, deploymentWorkload(o.Meta, s, nsLabels))
		case *corev1.Pod:
			out = append(out, podWorkload(o.Meta, s, nsLabels))
		}
	}
	slices.SortFunc(out, func(a, b *Workload) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.PodName, b.PodName), cmp.Compare(a.Kind, b.Kind))
	})
	return out
}

func servicesOf(objs []Object) []*Service {
	var out []*Service
	for _, o := range objs {
		if s, ok := o.Spec.(*corev1.Service); ok {
			out = append(out, serviceOf(o.Meta, s))
		}
	}
	slices.SortFunc(out, func(a, b *Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func endpointSlicesOf(objs []Object) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, o := range objs { // objs are sorted by kind, namespace, name
		if s, ok := o.Spec.(*discoveryv1.EndpointSlice); ok {
			out = append(out, s)
		}
	}
	return out
}

// configsOf collects the Istio objects whose spec has type T, sorted in Istio's
// "oldest wins" order: creationTimestamp, then name, then namespace.
func configsOf[T any](objs []Object) []*Config[T] {
	var out []*Config[T]
	for _, o := range objs {
		if s, ok := o.Spec.(T); ok {
			out = append(out, &Config[T]{Meta: o.Meta, Spec: s})
		}
	}
	slices.SortFunc(out, func(a, b *Config[T]) int { return compareAge(&a.Meta, &b.Meta) })
	return out
}

func compareAge(a, b *Meta) int {
	return cmp.Or(
		a.CreationTimestamp.Compare(b.CreationTimestamp),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Namespace, b.Namespace),
	)
}

// rejectedAndStale lists the objects with error diagnostics: absent ones (Rejected)
// and those served at their last good version (Stale).
func rejectedAndStale(objs []Object, diags []Diagnostic) (rejected, stale []Meta) {
	present := make(map[objectKey]bool, len(objs))
	for _, o := range objs {
		present[keyOf(&o.Meta)] = true
		if o.Retained {
			stale = append(stale, o.Meta)
		}
	}
	seen := make(map[objectKey]bool)
	for _, d := range diags {
		k := objectKey{d.Kind, d.Namespace, d.Name}
		if !d.IsError() || d.Kind == "" || d.Name == "" || present[k] || seen[k] {
			continue
		}
		seen[k] = true
		rejected = append(rejected, Meta{Kind: d.Kind, Namespace: d.Namespace, Name: d.Name, Source: d.Source})
	}
	return rejected, stale
}

// warnConflictingPeerAuthentications warns about every namespace-wide (or, in the root
// namespace, mesh-wide) PeerAuthentication that another one of the same scope
// overrides. As in Istio (pilot/pkg/model/authentication.go, getMostSpecificConfig:
// "the oldest one wins"), pas is in age order and the first of a scope serves.
func warnConflictingPeerAuthentications(pas []*Config[*security.PeerAuthentication], root string, diags *[]Diagnostic) {
	first := map[string]*Config[*security.PeerAuthentication]{}
	for _, pa := range pas {
		if len(pa.Spec.GetSelector().GetMatchLabels()) > 0 {
			continue
		}
		winner, ok := first[pa.Namespace]
		if !ok {
			first[pa.Namespace] = pa
			continue
		}
		scope := "namespace " + pa.Namespace
		if pa.Namespace == root {
			scope = "the mesh"
		}
		msg := fmt.Sprintf("another PeerAuthentication without selector in %s, %s (older, or first by name), decides; this one is ignored", scope, winner.Key())
		*diags = append(*diags, DiagnosticFor(&pa.Meta, SeverityWarning, "spec.selector", msg))
	}
}
