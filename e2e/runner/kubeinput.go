package runner

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/watch"
	"github.com/wardenmesh/warden/watch/kube"
)

// clusterInput builds, from one listing of the API server, the Input wardend builds
// once its informers have caught up: the same kinds, the same JSON (managedFields
// dropped, apiVersion and kind set), the same decoder, last-good retention on top of
// prev. Its Version is what wardend must serve after the runner's writes; the writes
// reach wardend through several watches in several bursts, so "the version changed"
// alone could be an intermediate one.
// secretNamespaces are the namespaces besides the root whose Secrets wardend watches
// (--client-secret-namespaces).
func clusterInput(ctx context.Context, env *kubeenv.Env, prev *watch.Input, secretNamespaces []string) (*watch.Input, error) {
	var items []runtime.Object
	var gvks []schema.GroupVersionKind
	add := func(gvk schema.GroupVersionKind, list runtime.Object, err error) error {
		if err != nil {
			return fmt.Errorf("list %s: %w", gvk.Kind, err)
		}
		objs, err := meta.ExtractList(list)
		if err != nil {
			return fmt.Errorf("list %s: %w", gvk.Kind, err)
		}
		for _, o := range objs {
			items = append(items, o)
			gvks = append(gvks, gvk)
		}
		return nil
	}
	core := env.Client.CoreV1()
	v1 := corev1.SchemeGroupVersion
	all := metav1.ListOptions{}
	nsList, err := core.Namespaces().List(ctx, all)
	if err := add(v1.WithKind("Namespace"), nsList, err); err != nil {
		return nil, err
	}
	saList, err := core.ServiceAccounts("").List(ctx, all)
	if err := add(v1.WithKind("ServiceAccount"), saList, err); err != nil {
		return nil, err
	}
	svcList, err := core.Services("").List(ctx, all)
	if err := add(v1.WithKind("Service"), svcList, err); err != nil {
		return nil, err
	}
	podList, err := core.Pods("").List(ctx, all)
	if err := add(v1.WithKind("Pod"), podList, err); err != nil {
		return nil, err
	}
	esList, err := env.Client.DiscoveryV1().EndpointSlices("").List(ctx, all)
	if err := add(discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"), esList, err); err != nil {
		return nil, err
	}
	cmList, err := core.ConfigMaps(watch.MeshConfigNamespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", watch.MeshConfigName).String()})
	if err := add(v1.WithKind("ConfigMap"), cmList, err); err != nil {
		return nil, err
	}
	// gateway credentials: wardend watches Secrets in --gateway-secret-namespaces,
	// istio-system by default, and in --client-secret-namespaces
	for _, ns := range append([]string{watch.MeshConfigNamespace}, secretNamespaces...) {
		secList, err := core.Secrets(ns).List(ctx, all)
		if err := add(v1.WithKind("Secret"), secList, err); err != nil {
			return nil, err
		}
	}
	for _, r := range kube.IstioResources {
		l, err := env.Dynamic.Resource(r.GVR).List(ctx, all)
		if err := add(r.GVR.GroupVersion().WithKind(r.Kind), l, err); err != nil {
			return nil, err
		}
	}
	var objs []watch.Object
	var diags []watch.Diagnostic
	for i, item := range items {
		obj := item.DeepCopyObject()
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, fmt.Errorf("listed %s: %w", gvks[i].Kind, err)
		}
		m.SetManagedFields(nil)
		obj.GetObjectKind().SetGroupVersionKind(gvks[i])
		data, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s/%s: %w", gvks[i].Kind, m.GetNamespace(), m.GetName(), err)
		}
		o, d := watch.DecodeFile("", data)
		objs = append(objs, o...)
		diags = append(diags, d...)
	}
	objs, diags = watch.RetainLastGood(prev, objs, diags)
	return watch.Build(objs, diags), nil
}
