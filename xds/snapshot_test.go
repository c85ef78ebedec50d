package xds

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/wardenmesh/warden/translate"
)

// TestOnlyReferencedEndpointsAreServed: a ClusterLoadAssignment no EDS cluster names is
// left out, since go-control-plane in ADS mode would otherwise never answer Envoy's EDS
// requests; one a cluster names but that is missing is an error.
func TestOnlyReferencedEndpointsAreServed(t *testing.T) {
	ads := &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}
	eds := &cluster.Cluster{Name: "a", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{EdsConfig: ads}}
	static := &cluster.Cluster{Name: "b", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}}
	out := &translate.Output{
		Clusters:  []types.Resource{eds, static},
		Endpoints: []types.Resource{&endpoint.ClusterLoadAssignment{ClusterName: "a"}, &endpoint.ClusterLoadAssignment{ClusterName: "b"}},
	}
	snap, _, counts, err := buildSnapshot(out, WorkloadSecret{}, newResourceCache())
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.GetResources(resource.EndpointType); len(got) != 1 || got["a"] == nil || counts[resource.EndpointType] != 1 {
		t.Fatalf("served endpoints %v, want only a's", got)
	}
	out.Endpoints = out.Endpoints[1:]
	if _, _, _, err := buildSnapshot(out, WorkloadSecret{}, newResourceCache()); err == nil {
		t.Fatal("a cluster whose endpoints are missing must not be served")
	}
}
