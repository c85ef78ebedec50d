package watch

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
)

// Object is one decoded, accepted manifest. Spec is the typed value:
//
//   - *security.PeerAuthentication, *security.RequestAuthentication,
//     *security.AuthorizationPolicy (istio.io/api/security/v1beta1)
//   - *networking.DestinationRule, *networking.Gateway, *networking.VirtualService
//     (istio.io/api/networking/v1alpha3)
//   - *corev1.Namespace, *corev1.ServiceAccount, *corev1.Service, *corev1.Pod,
//     *corev1.ConfigMap, *appsv1.Deployment, *discoveryv1.EndpointSlice
type Object struct {
	Meta
	Spec any
	// Retained is set when this is the last good version of an object whose current
	// version was rejected (see DirWatcher); Build lists such objects in Input.Stale.
	Retained bool
}

// objectKey identifies an object across API versions and files.
type objectKey struct{ kind, namespace, name string }

func keyOf(m *Meta) objectKey { return objectKey{m.Kind, m.Namespace, m.Name} }

func (k objectKey) String() string { return ref(k.kind, k.namespace, k.name) }

// kindInfo describes one accepted kind.
type kindInfo struct {
	namespaced bool
	istio      bool
	newSpec    func() any // a fresh value to decode an Istio spec into
}

// Kinds by API group; the version is checked against the group's served versions.
var (
	securityKinds = map[string]kindInfo{
		"PeerAuthentication":    {namespaced: true, istio: true, newSpec: func() any { return &security.PeerAuthentication{} }},
		"RequestAuthentication": {namespaced: true, istio: true, newSpec: func() any { return &security.RequestAuthentication{} }},
		"AuthorizationPolicy":   {namespaced: true, istio: true, newSpec: func() any { return &security.AuthorizationPolicy{} }},
	}
	networkingKinds = map[string]kindInfo{
		"DestinationRule": {namespaced: true, istio: true, newSpec: func() any { return &networking.DestinationRule{} }},
		"Gateway":         {namespaced: true, istio: true, newSpec: func() any { return &networking.Gateway{} }},
		"VirtualService":  {namespaced: true, istio: true, newSpec: func() any { return &networking.VirtualService{} }},
		"ServiceEntry":    {namespaced: true, istio: true, newSpec: func() any { return &networking.ServiceEntry{} }},
	}
	coreKinds = map[string]kindInfo{
		"Namespace":      {namespaced: false},
		"ServiceAccount": {namespaced: true},
		"Service":        {namespaced: true},
		"Pod":            {namespaced: true},
		"ConfigMap":      {namespaced: true},
	}
	appsKinds      = map[string]kindInfo{"Deployment": {namespaced: true}}
	discoveryKinds = map[string]kindInfo{"EndpointSlice": {namespaced: true}}

	kindsByAPIVersion = map[string]map[string]kindInfo{
		"security.istio.io/v1":         securityKinds,
		"security.istio.io/v1beta1":    securityKinds,
		"networking.istio.io/v1":       networkingKinds,
		"networking.istio.io/v1beta1":  networkingKinds,
		"networking.istio.io/v1alpha3": networkingKinds,
		"v1":                           coreKinds,
		"apps/v1":                      appsKinds,
		"discovery.k8s.io/v1":          discoveryKinds,
	}
)

// unknownKind reports a document whose apiVersion and kind Warden does not read. A kind
// of another API (a Sidecar, a Secret, a Gateway API Gateway) is a warning and
// skipped. A near miss of a kind Warden reads is an error, so that the last good
// version of its file keeps serving (see RetainLastGood) instead of the object
// silently going away: a kind Warden reads at an API version it does not serve, a
// proper prefix of such a kind in its group (a file cut mid-write: "kind: Peer"), or
// an apiVersion that is a proper prefix of a served one ("security.istio.io/v").
func unknownKind(m *Meta) Diagnostic {
	group, _, hasVersion := strings.Cut(m.APIVersion, "/")
	if !hasVersion {
		group = "" // core: "v1"
	}
	_, served := kindsByAPIVersion[m.APIVersion]
	for _, av := range servedAPIVersions() {
		if !served && strings.HasPrefix(av, m.APIVersion) {
			return DiagnosticFor(m, SeverityError, "apiVersion", fmt.Sprintf("unknown apiVersion %q (a cut-off %s?)", m.APIVersion, av))
		}
	}
	kinds := kindsOfGroup(group)
	if slices.Contains(kinds, m.Kind) {
		msg := fmt.Sprintf("%s is not served at %s (want %s)", m.Kind, m.APIVersion, strings.Join(versionsOf(group, m.Kind), " or "))
		return DiagnosticFor(m, SeverityError, "apiVersion", msg)
	}
	for _, k := range kinds {
		if strings.HasPrefix(k, m.Kind) {
			msg := fmt.Sprintf("unknown kind %s in %s (a cut-off %s?)", m.Kind, m.APIVersion, k)
			return DiagnosticFor(m, SeverityError, "kind", msg)
		}
	}
	return DiagnosticFor(m, SeverityWarning, "", fmt.Sprintf("unknown kind %s (%s), skipped", m.Kind, m.APIVersion))
}

// IsKnownKind reports whether Warden reads objects of this kind (in any API group).
func IsKnownKind(kind string) bool {
	for _, kinds := range kindsByAPIVersion {
		if _, ok := kinds[kind]; ok {
			return true
		}
	}
	return false
}

func servedAPIVersions() []string {
	return slices.Sorted(maps.Keys(kindsByAPIVersion))
}

// kindsOfGroup lists the kinds Warden reads in an API group ("" is core), sorted.
func kindsOfGroup(group string) []string {
	var out []string
	for av, kinds := range kindsByAPIVersion {
		g, _, ok := strings.Cut(av, "/")
		if !ok {
			g = ""
		}
		if g == group {
			out = append(out, slices.Collect(maps.Keys(kinds))...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// versionsOf lists the served apiVersions of a kind in a group, sorted.
func versionsOf(group, kind string) []string {
	var out []string
	for _, av := range servedAPIVersions() {
		g, _, ok := strings.Cut(av, "/")
		if !ok {
			g = ""
		}
		if _, has := kindsByAPIVersion[av][kind]; has && g == group {
			out = append(out, av)
		}
	}
	return out
}

func lookupKind(apiVersion, kind string) (kindInfo, bool) {
	k, ok := kindsByAPIVersion[apiVersion][kind]
	return k, ok
}
