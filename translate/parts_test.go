package translate

import (
	"slices"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
)

// TestPartsAreTheOutput: for every golden case, the shared and own parts of each type
// hold exactly the output's resources (xds hashes the parts instead of the lists), and
// two proxies with the same outbound view get the very same shared slices.
func TestPartsAreTheOutput(t *testing.T) {
	names := func(lists ...[]types.Resource) []string {
		var out []string
		for _, l := range lists {
			for _, r := range l {
				out = append(out, resourceName(r))
			}
		}
		slices.Sort(out)
		return out
	}
	for _, c := range loadGoldenCases(t) {
		x := NewIndex(c.in)
		out := x.Translate(c.proxy)
		p := out.Parts
		if c.proxy.Gateway {
			if p != nil {
				t.Errorf("%s: a gateway's output has no shared parts", c.name)
			}
			continue
		}
		if p == nil {
			t.Fatalf("%s: sidecar output without parts", c.name)
		}
		for _, tc := range []struct {
			typ         string
			list        []types.Resource
			shared, own []types.Resource
		}{
			{"clusters", out.Clusters, p.SharedClusters, p.OwnClusters},
			{"listeners", out.Listeners, p.SharedListeners, p.OwnListeners},
			{"routes", out.Routes, p.SharedRoutes, nil},
			{"endpoints", out.Endpoints, p.SharedEndpoints, nil},
		} {
			if got, want := names(tc.shared, tc.own), names(tc.list); !slices.Equal(got, want) {
				t.Errorf("%s %s: parts %v, output %v", c.name, tc.typ, got, want)
			}
		}
		again := x.Translate(c.proxy).Parts
		if len(p.SharedClusters) > 0 && &again.SharedClusters[0] != &p.SharedClusters[0] {
			t.Errorf("%s: the shared clusters are rebuilt for each translation", c.name)
		}
	}
}
