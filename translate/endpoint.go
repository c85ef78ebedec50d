package translate

import (
	"cmp"
	"slices"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wardenmesh/warden/watch"
)

func lbEndpoint(ip string, port uint32, md *core.Metadata) *endpoint.LbEndpoint {
	return &endpoint.LbEndpoint{
		HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: socketAddress(ip, port)}},
		Metadata:       md,
	}
}

// istioTLSMetadata marks an endpoint that accepts mesh mTLS.
func istioTLSMetadata() *core.Metadata {
	return &core.Metadata{FilterMetadata: map[string]*structpb.Struct{
		transportSocketMatchKey: {Fields: map[string]*structpb.Value{tlsModeKey: structpb.NewStringValue(tlsModeIstio)}},
	}}
}

// loadAssignment lists the ready endpoints of one Service port, sorted by address.
// With autoMTLS, an endpoint is marked for mesh mTLS only when its workload runs a
// sidecar and that workload's own PeerAuthentication does not DISABLE mTLS on the
// target port.
func (b *builder) loadAssignment(name string, svc *watch.Service, sp watch.ServicePort, autoMTLS bool) *endpoint.ClusterLoadAssignment {
	eps := slices.Clone(b.in.Endpoints(svc, sp))
	slices.SortFunc(eps, func(a, c watch.Endpoint) int {
		return cmp.Or(cmp.Compare(a.IP, c.IP), cmp.Compare(a.Port, c.Port))
	})
	cla := &endpoint.ClusterLoadAssignment{ClusterName: name}
	if len(eps) == 0 {
		return cla
	}
	lbs := make([]*endpoint.LbEndpoint, 0, len(eps))
	for _, ep := range eps {
		var md *core.Metadata
		if autoMTLS && b.acceptsMeshTLS(ep) {
			md = istioTLSMetadata()
		}
		lbs = append(lbs, lbEndpoint(ep.IP, ep.Port, md))
	}
	cla.Endpoints = []*endpoint.LocalityLbEndpoints{{LbEndpoints: lbs}}
	return cla
}

func (b *builder) acceptsMeshTLS(ep watch.Endpoint) bool {
	w := ep.Workload
	if w == nil || !w.Sidecar {
		return false
	}
	return b.x.workloadMTLS(w).PortMode(ep.Port) != ModeDisable
}
