package translate

import (
	"encoding/json"
	"sync"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardenmesh/warden/watch"
)

// TestWorkloadObjectLabelsWin: a proxy never chooses its own policy inputs. The
// Pod/Deployment object's labels decide even when the proxy's credential carries other
// labels; only a pod the input has no object for is synthesized from the credential.
func TestWorkloadObjectLabelsWin(t *testing.T) {
	in := loadCase(t, "peerauthn-workload-disable") // web: DISABLE by selector app=web, mesh STRICT
	if got := inboundChainNames(t, Translate(in, Proxy{Namespace: "foo", Pod: "web"})); !cmp.Equal(got, []string{"virtualInbound-blackhole", "0.0.0.0_8080", "virtualInbound"}) {
		t.Errorf("object labels: chains %v", got)
	}
	got := inboundChainNames(t, Translate(in, Proxy{Namespace: "foo", Pod: "web", Labels: map[string]string{"app": "other"}}))
	if want := []string{"virtualInbound-blackhole", "0.0.0.0_8080", "virtualInbound"}; !cmp.Equal(got, want) {
		t.Errorf("credential labels on a known pod: chains %v, want %v (the object's app=web: DISABLE)", got, want)
	}
	got = inboundChainNames(t, Translate(in, Proxy{Namespace: "foo", Pod: "unknown", Labels: map[string]string{"app": "web"}}))
	// Service web selects the synthesized pod, so its target port 8080 is served, and
	// the workload policy (app=web) applies: DISABLE.
	if want := []string{"virtualInbound-blackhole", "0.0.0.0_8080", "virtualInbound"}; !cmp.Equal(got, want) {
		t.Errorf("synthesized workload: chains %v, want %v", got, want)
	}
}

// TestIndexConcurrent translates every proxy of every case concurrently through one
// Index and requires the same bytes as a sequential, fresh translation.
func TestIndexConcurrent(t *testing.T) {
	for _, gc := range loadGoldenCases(t) {
		want := marshalOutput(t, Translate(gc.in, gc.proxy))
		x := NewIndex(gc.in)
		var wg sync.WaitGroup
		results := make([][]byte, 8)
		outs := make([]*Output, 8)
		for i := range results {
			wg.Go(func() { outs[i] = x.Translate(gc.proxy) })
		}
		wg.Wait()
		for i, out := range outs {
			if results[i] = marshalOutput(t, out); string(results[i]) != string(want) {
				t.Errorf("%s: concurrent translation %d differs", gc.name, i)
			}
		}
	}
}

// TestReferencesResolve checks that every cluster, route configuration and EDS
// service a resource names exists in the same output, and that every SDS secret is
// listed in SecretNames.
func TestReferencesResolve(t *testing.T) {
	for _, gc := range loadGoldenCases(t) {
		out := Translate(gc.in, gc.proxy)
		names := func(rs []types.Resource) map[string]bool {
			m := map[string]bool{}
			for _, r := range rs {
				m[resourceName(r)] = true
			}
			return m
		}
		clusters, routes, endpoints := names(out.Clusters), names(out.Routes), names(out.Endpoints)
		secrets := map[string]bool{}
		for _, s := range out.SecretNames {
			secrets[s] = true
		}
		refs := map[string][]string{}
		for _, rs := range [][]types.Resource{out.Listeners, out.Routes, out.Clusters} {
			for _, r := range rs {
				collectRefs(t, r, refs)
			}
		}
		check := func(kind string, have map[string]bool) {
			for _, n := range refs[kind] {
				if !have[n] {
					t.Errorf("%s: %s %q is referenced but not served", gc.name, kind, n)
				}
			}
		}
		check("cluster", clusters)
		check("routeConfigName", routes)
		check("serviceName", endpoints)
		check("secret", secrets)
		if len(refs["cluster"]) == 0 {
			t.Errorf("%s: no cluster references found; the walker is broken", gc.name)
		}
	}
}

// collectRefs walks a resource's JSON (Any payloads expanded) for names of other
// resources.
func collectRefs(t *testing.T, r types.Resource, refs map[string][]string) {
	t.Helper()
	js, err := protojson.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(v any, parent string)
	walk = func(v any, parent string) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if parent == "clusterMinHealthyPercentages" {
					refs["cluster"] = append(refs["cluster"], k) // the health_check filter's clusters
				}
				if s, ok := c.(string); ok {
					switch {
					case k == "serviceName" && parent == "grpcHealthCheck": // a gRPC service, not EDS
					case k == "cluster", k == "routeConfigName", k == "serviceName":
						refs[k] = append(refs[k], s)
					case k == "name" && (parent == "tlsCertificateSdsSecretConfigs" || parent == "validationContextSdsSecretConfig"):
						refs["secret"] = append(refs["secret"], s)
					}
				}
				walk(c, k)
			}
		case []any:
			for _, c := range v {
				walk(c, parent)
			}
		}
	}
	walk(v, "")
}

func inboundChainNames(t *testing.T, out *Output) []string {
	t.Helper()
	for _, r := range out.Listeners {
		if l := r.(*listener.Listener); l.GetName() == inboundListenerName {
			var names []string
			for _, fc := range l.GetFilterChains() {
				names = append(names, fc.GetName())
			}
			return names
		}
	}
	t.Fatal("no virtualInbound listener")
	return nil
}

func loadCase(t *testing.T, name string) *watch.Input {
	t.Helper()
	for _, gc := range loadGoldenCases(t) {
		if gc.name == name {
			return gc.in
		}
	}
	t.Fatalf("no case %s", name)
	return nil
}
