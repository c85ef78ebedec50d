package translate

import (
	"maps"
	"reflect"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/wardenmesh/warden/watch"
)

// PushScope is which proxies a change of Input can affect: every proxy (All), or the
// proxies of the listed namespaces (gateways included). It is the dependency index of
// the push: each input object feeds the output of the proxies listed here for its
// kind, and anything not listed is assumed to feed every proxy.
//
//   - An AuthorizationPolicy or RequestAuthentication outside the root namespace
//     attaches only to workloads of its own namespace (selectAuthz, jwtRules: a
//     selector picks workloads of the policy's namespace; targetRefs never attach) and
//     feeds nothing shared: no outbound cluster, route or listener reads it. Its scope is
//     its namespace, before and after the change (a rejected one, in Input.Rejected,
//     likewise).
//   - Everything else feeds every proxy or cannot be bounded cheaply: root-namespace
//     policies (mesh-wide), MeshConfig, PeerAuthentications (clients' outbound TLS and
//     every workload's inbound mode), DestinationRules, Services, EndpointSlices,
//     ServiceEntries, VirtualServices, Gateways, Pods and Deployments (they are the
//     endpoints of every proxy's outbound clusters), Namespaces, ServiceAccounts, the
//     trust domain and the fetched JWKS. Their scope is All.
//
// Objects are compared by value (watch.Changed), so an unchanged object re-decoded or
// re-listed costs nothing.
type PushScope struct {
	All        bool
	Namespaces map[string]bool // when !All; empty when nothing changed
	// Reason names the first object or field that made the scope All, for logs.
	Reason string
	// Moved are objects whose only change is their Source (watch.Changed), with the new
	// one: the proxies the scope leaves out keep their configuration but their
	// diagnostics about these objects must name the new Source (MovedDiagnostics).
	Moved map[watch.ObjectRef]watch.Location
}

// MovedDiagnostics is ds with the Source of every diagnostic about a moved object
// updated; ds itself when none is.
func (s PushScope) MovedDiagnostics(ds []watch.Diagnostic) []watch.Diagnostic {
	var out []watch.Diagnostic
	for i, d := range ds {
		loc, ok := s.Moved[watch.ObjectRef{Kind: d.Kind, Namespace: d.Namespace, Name: d.Name}]
		if !ok || d.Kind == "" || loc == d.Source {
			continue
		}
		if out == nil {
			out = slices.Clone(ds)
		}
		out[i].Source = loc
	}
	if out == nil {
		return ds
	}
	return out
}

// Affects reports whether a proxy of namespace ns may be affected.
func (s PushScope) Affects(ns string) bool { return s.All || s.Namespaces[ns] }

// Union is the scope of both changes.
func (s PushScope) Union(o PushScope) PushScope {
	if s.All {
		return s
	}
	if o.All {
		return o
	}
	u := PushScope{Namespaces: maps.Clone(s.Namespaces), Moved: maps.Clone(s.Moved)}
	if u.Namespaces == nil {
		u.Namespaces = map[string]bool{}
	}
	maps.Copy(u.Namespaces, o.Namespaces)
	if len(o.Moved) > 0 && u.Moved == nil {
		u.Moved = map[watch.ObjectRef]watch.Location{}
	}
	maps.Copy(u.Moved, o.Moved)
	return u
}

// AllProxies is the scope of a change that affects every proxy.
func AllProxies(reason string) PushScope { return PushScope{All: true, Reason: reason} }

// ChangeScope is the scope of the change from old to next (All when old is nil).
func ChangeScope(old, next *watch.Input) PushScope {
	switch {
	case old == nil:
		return AllProxies("first input")
	case old.RootNamespace != next.RootNamespace, old.TrustDomain != next.TrustDomain, old.DomainSuffix != next.DomainSuffix:
		return AllProxies("mesh identity")
	case old.MultipleCustomAuthzProviders != next.MultipleCustomAuthzProviders, !proto.Equal(old.Mesh, next.Mesh):
		return AllProxies("MeshConfig")
	case !reflect.DeepEqual(old.JWKS, next.JWKS):
		return AllProxies("JWKS")
	}
	changed, moved, ok := watch.Changed(old, next)
	if !ok {
		return AllProxies("input not built by watch.Build")
	}
	sc := PushScope{Namespaces: map[string]bool{}, Moved: moved}
	add := func(kind, ns, name string) bool {
		if (kind == "AuthorizationPolicy" || kind == "RequestAuthentication") && ns != "" && ns != next.RootNamespace {
			sc.Namespaces[ns] = true
			return true
		}
		sc = AllProxies(watch.ObjectRef{Kind: kind, Namespace: ns, Name: name}.String())
		return false
	}
	for _, r := range changed {
		if !add(r.Kind, r.Namespace, r.Name) {
			return sc
		}
	}
	// Rejected and stale objects fail closed over their scope: a difference in either
	// list is a change of every object listed (over-approximated: all of them).
	for _, l := range [][2][]watch.Meta{{old.Rejected, next.Rejected}, {old.Stale, next.Stale}} {
		if reflect.DeepEqual(l[0], l[1]) {
			continue
		}
		for _, ms := range l {
			for _, m := range ms {
				if !add(m.Kind, m.Namespace, m.Name) {
					return sc
				}
			}
		}
	}
	return sc
}

// SortedNamespaces lists the scope's namespaces, for logs.
func (s PushScope) SortedNamespaces() []string {
	out := make([]string, 0, len(s.Namespaces))
	for ns := range s.Namespaces {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// NewIndexFrom is NewIndex(in), reusing what prev (the Index of the previous Input)
// derived from objects that sc says did not change: when sc is not All, only
// namespace AuthorizationPolicies and RequestAuthentications changed, so the
// PeerAuthentication scopes, the DestinationRule lookup, the outbound view and every
// outbound resource built so far are prev's, and every AuthorizationPolicy whose
// value is unchanged keeps its compiled form. With sc All (or prev nil) it is
// NewIndex(in).
func NewIndexFrom(prev *Index, in *watch.Input, sc PushScope) *Index {
	if prev == nil || sc.All {
		return NewIndex(in)
	}
	prevShared := prev.sharedOutbound()
	x := &Index{
		in:        in,
		pa:        prev.pa,
		authzByNS: map[string][]*authzConfig{},
		mtls:      prev.mtls, // keyed by prev's workloads; others resolve through pa (equal)
		dr:        prev.dr,
		byPort:    prev.byPort,
		ports:     prev.ports,
		services:  prev.services,
		seDiags:   prev.seDiags,
	}
	x.sharedOnce.Do(func() { x.shared = prevShared })
	prev.mu.Lock()
	x.outbound, x.clusters, x.vhosts = maps.Clone(prev.outbound), maps.Clone(prev.clusters), maps.Clone(prev.vhosts)
	prev.mu.Unlock()

	prevByKey := make(map[string]*authzConfig, len(prev.in.AuthorizationPolicies))
	for _, c := range prev.in.AuthorizationPolicies {
		prevByKey[c.Key()] = c
	}
	same := map[*authzConfig]*authzConfig{}
	for _, c := range in.AuthorizationPolicies {
		x.authzByNS[c.Namespace] = append(x.authzByNS[c.Namespace], c)
		if o := prevByKey[c.Key()]; o != nil && reflect.DeepEqual(o.Meta, c.Meta) && proto.Equal(o.Spec, c.Spec) {
			same[c] = o
		}
	}
	x.authz = prev.authz.Derive(in, same)
	return x
}
