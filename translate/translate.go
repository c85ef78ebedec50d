package translate

import (
	"cmp"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/wardenmesh/warden/watch"
)

// Translate computes the resources of one proxy. Translating many proxies of the same
// Input is faster through NewIndex(in).Translate.
func Translate(in *watch.Input, p Proxy) *Output {
	return NewIndex(in).Translate(p)
}

// Translate computes the resources of one proxy from the Index's Input.
func (x *Index) Translate(p Proxy) *Output {
	if x.ServesGateway(p) {
		return x.translateGateway(p)
	}
	w := x.proxyWorkload(p)
	mtls := x.workloadMTLS(w)

	b := newBuilder(x)
	b.w = w
	if p.Gateway {
		b.diag(severityWarning, &w.Meta, "metadata.labels", "the proxy of pod "+p.Namespace+"/"+p.Pod+
			" claims the gateway role (node metadata "+gatewayClaimKey+": gateway), but its Pod object has neither label "+
			watch.LabelIstio+": ingressgateway or egressgateway nor annotation "+watch.AnnotationInjectTemplates+": gateway: served as a sidecar (no Gateway listeners or credentials)")
	}
	ports := b.inboundPorts(w, mtls)
	var listeners, clusters []types.Resource
	inbound := b.inboundListener(ports, mtls)
	b.withAccessLogs(inbound, p.AccessLog)
	listeners = append(listeners, inbound)
	for _, c := range b.inboundClusters(ports) {
		clusters = append(clusters, c)
	}
	for _, c := range b.extAuthzClusters() {
		clusters = append(clusters, c)
	}
	// The kubelet's probes (probes.go): only from the Pod object, never the proxy's metadata.
	if l, cs := b.appProbeResources(w); l != nil {
		listeners = append(listeners, l)
		for _, c := range cs {
			clusters = append(clusters, c)
		}
	}
	diags := b.diags
	if b.err != nil {
		diags = append(diags, translationError("inbound for "+p.Namespace+"/"+p.Pod, b.err))
		listeners, clusters = nil, nil
	}
	listeners = validated(&diags, listeners)
	clusters = validated(&diags, clusters)

	ob := x.outboundFor(w.Namespace, w.PodLabels)
	listeners, clusters = sortedByName(listeners), sortedByName(clusters)
	out := &Output{
		Listeners:   mergeByName(listeners, ob.listeners),
		Routes:      slices.Clip(ob.routes),
		Clusters:    mergeByName(clusters, ob.clusters),
		Endpoints:   slices.Clip(ob.endpoints),
		Diagnostics: sortedDiagnostics(append(diags, ob.diags...)),
		Parts: &Parts{
			SharedKey:      ob.key,
			SharedClusters: slices.Clip(ob.clusters), OwnClusters: clusters,
			SharedListeners: slices.Clip(ob.listeners), OwnListeners: listeners,
			SharedRoutes: slices.Clip(ob.routes), SharedEndpoints: slices.Clip(ob.endpoints),
		},
	}
	if b.secrets || ob.secrets {
		out.SecretNames = []string{SecretRootCA, SecretDefault}
	}
	out.SecretNames = append(out.SecretNames, ob.credentials...)
	return out
}

func sortedByName(rs []types.Resource) []types.Resource {
	slices.SortStableFunc(rs, func(a, b types.Resource) int {
		return cmp.Compare(resourceName(a), resourceName(b))
	})
	return rs
}

// mergeByName merges two lists sorted by name into a new sorted list.
func mergeByName(a, b []types.Resource) []types.Resource {
	out := make([]types.Resource, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if resourceName(b[0]) < resourceName(a[0]) {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

func sortedDiagnostics(ds []watch.Diagnostic) []watch.Diagnostic {
	slices.SortStableFunc(ds, func(a, b watch.Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Field, b.Field),
			cmp.Compare(a.Severity, b.Severity),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.CompactFunc(ds, func(a, b watch.Diagnostic) bool { return a == b })
}
