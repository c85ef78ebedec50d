package xds

import (
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/durationpb"

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
	b, err := buildSnapshot(out, WorkloadSecret{}, newResourceCache())
	if err != nil {
		t.Fatal(err)
	}
	if got := b.snap.GetResources(resource.EndpointType); len(got) != 1 || got["a"] == nil || b.counts[resource.EndpointType] != 1 {
		t.Fatalf("served endpoints %v, want only a's", got)
	}
	out.Endpoints = out.Endpoints[1:]
	if _, err := buildSnapshot(out, WorkloadSecret{}, newResourceCache()); err == nil {
		t.Fatal("a cluster whose endpoints are missing must not be served")
	}
}

// TestDecidePush: the push decision names exactly the types whose version changed,
// including a type that appeared or disappeared; equal versions push nothing.
func TestDecidePush(t *testing.T) {
	v := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name       string
		prev, next map[string]string
		want       string
	}{
		{"first snapshot pushes every type", nil, v(resource.ListenerType, "1", resource.SecretType, "2"), "LDS,SDS"},
		{"same versions push nothing", v(resource.ListenerType, "1", resource.SecretType, "2"), v(resource.ListenerType, "1", resource.SecretType, "2"), ""},
		{"a rotated certificate pushes only SDS", v(resource.ListenerType, "1", resource.SecretType, "2"), v(resource.ListenerType, "1", resource.SecretType, "3"), "SDS"},
		{"a type that disappears is a change", v(resource.ListenerType, "1", resource.RouteType, "2"), v(resource.ListenerType, "1"), "RDS"},
		{"a type that appears is a change", v(resource.ListenerType, "1"), v(resource.ListenerType, "1", resource.ClusterType, "9"), "CDS"},
	}
	for _, c := range cases {
		if got := strings.Join(decidePush(c.prev, c.next), ","); got != c.want {
			t.Errorf("%s: decidePush = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestVersionCache tests resourceCache directly: a version is a content hash (equal
// content in other objects or another order has the same version, any changed byte
// another one); a shared part is hashed once per type and SharedKey within one cache
// (one input), whatever slice holds it; equal versions share one interned set; and a
// new cache (a new input) never reuses a shared version of the previous one.
func TestVersionCache(t *testing.T) {
	mk := func(names ...string) []types.Resource {
		var out []types.Resource
		for _, n := range names {
			out = append(out, &cluster.Cluster{Name: n, ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}})
		}
		return out
	}
	rc := newResourceCache()
	a, err := rc.set(resource.ClusterType, mk("a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := rc.set(resource.ClusterType, mk("b", "a"))
	if a != b {
		t.Fatalf("equal content in another order: versions %s and %s, want one interned set", a.version, b.version)
	}
	changed := mk("a", "b")
	changed[1].(*cluster.Cluster).ConnectTimeout = durationpb.New(time.Second)
	if c, _ := rc.set(resource.ClusterType, changed); c.version == a.version {
		t.Fatal("a changed field must change the version")
	}

	shared := mk("s1", "s2")
	own := mk("own")
	p1, err := rc.setParts(resource.ClusterType, "ns|k", shared, own)
	if err != nil {
		t.Fatal(err)
	}
	// Same key: the cached shared version is used, so even a different slice under the
	// same key (which translate never hands out) gets the first version: the key, not
	// the slice's address, is the contract.
	p2, _ := rc.setParts(resource.ClusterType, "ns|k", mk("other"), own)
	if p1 != p2 {
		t.Fatalf("same SharedKey in one cache: sets %s and %s, want the cached one", p1.version, p2.version)
	}
	if p3, _ := rc.setParts(resource.ClusterType, "ns|other-key", mk("other"), own); p3 == p1 || len(p3.items) != 2 {
		t.Fatalf("another SharedKey must be hashed on its own: %v", p3.items)
	}
	if p4, _ := rc.setParts(resource.ListenerType, "ns|k", nil, nil); p4.version == p1.version {
		t.Fatal("the shared version is per type")
	}
	fresh, _ := newResourceCache().setParts(resource.ClusterType, "ns|k", mk("other"), own)
	if fresh.version == p1.version {
		t.Fatal("a new input's cache must not reuse the previous input's shared versions")
	}
	if len(p1.items) != 3 {
		t.Fatalf("union of shared and own: %d items, want 3", len(p1.items))
	}
}
