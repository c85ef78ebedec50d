package watch

import (
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

func lookupKind(apiVersion, kind string) (kindInfo, bool) {
	k, ok := kindsByAPIVersion[apiVersion][kind]
	return k, ok
}
