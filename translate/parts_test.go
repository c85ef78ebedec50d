package translate

import (
	"slices"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

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
		if p.SharedKey == "" || again.SharedKey != p.SharedKey {
			t.Errorf("%s: SharedKey %q then %q, want one non-empty key", c.name, p.SharedKey, again.SharedKey)
		}
	}
}

// TestSharedKeyNamesTheSharedSlices is the contract xds relies on: within one Index,
// outputs with the same SharedKey hold the very same shared slices, and namespaces with
// different outbound views have different keys.
func TestSharedKeyNamesTheSharedSlices(t *testing.T) {
	pod := func(name, ns string) string {
		return "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", namespace: " + ns + ", labels: {app: " + name + "}}\n" +
			"spec: {containers: [{name: a, image: x, ports: [{containerPort: 8080}]}]}\n"
	}
	svc := "---\napiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: bar}\nspec: {clusterIP: 10.96.0.5, selector: {app: api}, ports: [{name: http, port: 80, targetPort: 8080}]}\n" +
		"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: api, namespace: foo}\nspec: {host: api.bar.svc.cluster.local, exportTo: [.], trafficPolicy: {tls: {mode: DISABLE}}}\n"
	in := meshtest.Input(t, meshtest.Join(meshtest.RootNamespace, meshtest.Web)+pod("web2", "foo")+pod("api", "bar")+svc)
	x := NewIndex(in)
	parts := map[string]*Parts{}
	for _, id := range []string{"web.foo", "web2.foo", "api.bar"} {
		pod, ns, _ := strings.Cut(id, ".")
		parts[id] = x.Translate(Proxy{ID: id, Namespace: ns, Pod: pod}).Parts
	}
	a, b, c := parts["web.foo"], parts["web2.foo"], parts["api.bar"]
	if a.SharedKey != b.SharedKey || &a.SharedClusters[0] != &b.SharedClusters[0] {
		t.Fatalf("two sidecars of foo: keys %q and %q, want one key naming the same slices", a.SharedKey, b.SharedKey)
	}
	if a.SharedKey == c.SharedKey {
		t.Fatalf("foo (with a foo-only DestinationRule) and bar share key %q", a.SharedKey)
	}
}
