package kube

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/wardenmesh/warden/watch"
)

// istioVersion is the version the Istio kinds are read at: the storage version of all
// seven CRDs in istio.io/api's customresourcedefinitions.gen.yaml. Each object is read
// once, at this version; v1beta1 objects are the same objects served differently.
const istioVersion = "v1"

// IstioResources are the Istio kinds Warden watches.
var IstioResources = []struct {
	Kind string
	GVR  schema.GroupVersionResource
}{
	{"PeerAuthentication", schema.GroupVersionResource{Group: "security.istio.io", Version: istioVersion, Resource: "peerauthentications"}},
	{"RequestAuthentication", schema.GroupVersionResource{Group: "security.istio.io", Version: istioVersion, Resource: "requestauthentications"}},
	{"AuthorizationPolicy", schema.GroupVersionResource{Group: "security.istio.io", Version: istioVersion, Resource: "authorizationpolicies"}},
	{"DestinationRule", schema.GroupVersionResource{Group: "networking.istio.io", Version: istioVersion, Resource: "destinationrules"}},
	{"Gateway", schema.GroupVersionResource{Group: "networking.istio.io", Version: istioVersion, Resource: "gateways"}},
	{"VirtualService", schema.GroupVersionResource{Group: "networking.istio.io", Version: istioVersion, Resource: "virtualservices"}},
	{"ServiceEntry", schema.GroupVersionResource{Group: "networking.istio.io", Version: istioVersion, Resource: "serviceentries"}},
}

// informer is one watched kind: its shared informer and the apiVersion and kind its
// objects are decoded as (typed informers drop TypeMeta).
type informer struct {
	name     string // for logs: "pods", "peerauthentications.security.istio.io"
	gvk      schema.GroupVersionKind
	informer cache.SharedIndexInformer
}

// factories holds the informer factories and the informers taken from them.
type factories struct {
	core      informers.SharedInformerFactory
	mesh      informers.SharedInformerFactory // the MeshConfig ConfigMap only
	dyn       dynamicinformer.DynamicSharedInformerFactory
	informers []informer
}

// newFactories creates one informer per watched kind. Nothing runs until start.
func newFactories(client kubernetes.Interface, dyn dynamic.Interface, resync time.Duration) (*factories, error) {
	f := &factories{
		core: informers.NewSharedInformerFactoryWithOptions(client, resync, informers.WithTransform(stripManagedFields)),
		mesh: informers.NewSharedInformerFactoryWithOptions(client, resync,
			informers.WithNamespace(watch.MeshConfigNamespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", watch.MeshConfigName).String()
			}),
			informers.WithTransform(stripManagedFields)),
		dyn: dynamicinformer.NewDynamicSharedInformerFactory(dyn, resync),
	}
	core := func(name string, gvk schema.GroupVersionKind, inf cache.SharedIndexInformer) {
		f.informers = append(f.informers, informer{name: name, gvk: gvk, informer: inf})
	}
	v1 := corev1.SchemeGroupVersion
	core("namespaces", v1.WithKind("Namespace"), f.core.Core().V1().Namespaces().Informer())
	core("serviceaccounts", v1.WithKind("ServiceAccount"), f.core.Core().V1().ServiceAccounts().Informer())
	core("services", v1.WithKind("Service"), f.core.Core().V1().Services().Informer())
	core("pods", v1.WithKind("Pod"), f.core.Core().V1().Pods().Informer())
	core("endpointslices.discovery.k8s.io", discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"),
		f.core.Discovery().V1().EndpointSlices().Informer())
	core("configmaps/"+watch.MeshConfigName, v1.WithKind("ConfigMap"), f.mesh.Core().V1().ConfigMaps().Informer())
	for _, r := range IstioResources {
		inf := f.dyn.ForResource(r.GVR).Informer()
		if err := inf.SetTransform(stripManagedFields); err != nil {
			return nil, fmt.Errorf("informer for %s: %w", r.GVR.GroupResource(), err)
		}
		core(r.GVR.GroupResource().String(), r.GVR.GroupVersion().WithKind(r.Kind), inf)
	}
	return f, nil
}

// start runs every informer until stop closes.
func (f *factories) start(stop <-chan struct{}) {
	f.core.Start(stop)
	f.mesh.Start(stop)
	f.dyn.Start(stop)
}

// shutdown waits for the informers' goroutines after stop has closed.
func (f *factories) shutdown() {
	f.core.Shutdown()
	f.mesh.Shutdown()
	f.dyn.Shutdown()
}

// unsynced names the informers that have not completed their first list.
func (f *factories) unsynced() []string {
	var out []string
	for _, i := range f.informers {
		if !i.informer.HasSynced() {
			out = append(out, i.name)
		}
	}
	return out
}

// stripManagedFields drops what Warden never reads before objects enter the caches.
func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
