package translate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnet "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/wardenmesh/warden/watch"
)

// FuzzTranslate fuzzes the YAML of a golden case (seeds: every translate/testdata/*.in.yaml,
// read when the test runs so that a new golden is a new seed, and rejected-policy
// variants in testdata/fuzz/FuzzTranslate). The proxy is the
// "# proxy:" header, else the first workload, else a bare sidecar. Properties: no
// panic; the output is the same from a fresh Index and from a reused one (twice);
// every resource passes ValidateAll; and fail closed: when the decoder rejected an
// AuthorizationPolicy of the proxy's namespace or of the root namespace
// (Input.Rejected), every filter chain that serves the workload (virtualInbound's
// chains but its blackhole, every gateway listener) denies everything through an
// RBAC DENY policy for it, or the listener is absent (nothing is served); and a
// rejected PeerAuthentication in the sidecar's scope leaves no plaintext chain.
func FuzzTranslate(f *testing.F) {
	addGoldenSeeds(f, "testdata")
	f.Add([]byte("# proxy: web-0.default\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: bad}\nspec: {action: DENYY}\n"))
	f.Add([]byte("# proxy: gw-0.istio-system gateway\napiVersion: v1\nkind: Pod\nmetadata: {name: gw-0, namespace: istio-system, labels: {istio: ingressgateway}}\nspec: {containers: [{name: istio-proxy, image: envoy}]}\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: bad, namespace: istio-system}\nspec: {rules: [{to: [{operation: {methodz: [GET]}}]}]}\n"))
	f.Add([]byte("# proxy: web-0.default\napiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: default}\nspec: {containers: [{name: a, image: x, ports: [{containerPort: 80}]}]}\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: ok, namespace: default}\nspec: {mtls: {mode: DISABLE}}\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: bad, namespace: default}\nspec: {mtls: {mode: STRIKT}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, diags := watch.DecodeFile("testdata/fuzz.in.yaml", data)
		in := watch.Build(objs, diags)
		p := fuzzProxy(in, data)

		out := Translate(in, p)
		first := marshalOutput(t, out)
		x := NewIndex(in)
		for i := range 2 {
			if got := marshalOutput(t, x.Translate(p)); !bytes.Equal(first, got) {
				t.Fatalf("proxy %s: translation %d from a shared Index differs from a fresh one", p.ID, i)
			}
		}
		for _, rs := range [][]types.Resource{out.Listeners, out.Routes, out.Clusters, out.Endpoints} {
			for _, r := range rs {
				if err := validate(r); err != nil {
					t.Fatalf("proxy %s: %s: %v", p.ID, resourceName(r), err)
				}
			}
		}
		// Only a proxy whose Pod object is a gateway is served as one (ServesGateway).
		p.Gateway = x.ServesGateway(p)
		for _, m := range in.Rejected {
			if m.Kind == "AuthorizationPolicy" && (m.Namespace == p.Namespace || m.Namespace == in.RootNamespace) {
				checkDeniesAll(t, p, out, "ns["+m.Namespace+"]-policy["+m.Name+"]-rule[invalid]") // authz's deny-all entry
			}
			if m.Kind == "PeerAuthentication" && !p.Gateway && (m.Namespace == p.Namespace || m.Namespace == in.RootNamespace) {
				checkNoPlaintext(t, p, out, m.Key())
			}
		}
	})
}

// fuzzProxy picks the proxy a fuzzed case translates.
func fuzzProxy(in *watch.Input, data []byte) Proxy {
	if p, err := proxyHeader(data); err == nil && p.Pod != "" && p.Namespace != "" {
		return p
	}
	for _, w := range in.Workloads {
		return Proxy{ID: w.PodName + "." + w.Namespace, Namespace: w.Namespace, Pod: w.PodName, Gateway: w.Gateway}
	}
	return Proxy{ID: "fuzz-0.default", Namespace: "default", Pod: "fuzz-0"}
}

// checkNoPlaintext requires every chain of virtualInbound (when served) but its
// blackhole to terminate TLS.
func checkNoPlaintext(t *testing.T, p Proxy, out *Output, key string) {
	t.Helper()
	for _, r := range out.Listeners {
		l := r.(*listener.Listener)
		if l.GetName() != inboundListenerName {
			continue
		}
		for _, fc := range l.GetFilterChains() {
			if fc.GetName() != inboundListenerName+"-blackhole" && fc.GetTransportSocket() == nil {
				t.Fatalf("proxy %s, rejected PeerAuthentication %s: chain %q accepts plaintext", p.ID, key, fc.GetName())
			}
		}
	}
}

// checkDeniesAll requires every serving chain of p to carry the deny-all RBAC
// policy key.
func checkDeniesAll(t *testing.T, p Proxy, out *Output, key string) {
	t.Helper()
	for _, r := range out.Listeners {
		l := r.(*listener.Listener)
		if !p.Gateway && l.GetName() != inboundListenerName {
			continue // outbound listeners carry no authorization, as in Istio
		}
		for _, fc := range l.GetFilterChains() {
			if fc.GetName() == inboundListenerName+"-blackhole" {
				continue
			}
			if err := chainDenies(fc, key); err != nil {
				t.Fatalf("proxy %s, rejected AuthorizationPolicy %s: listener %s chain %q does not deny all: %v",
					p.ID, key, l.GetName(), fc.GetName(), err)
			}
		}
	}
}

// chainDenies reports an error unless the chain has a network RBAC filter, or an HCM
// with an HTTP RBAC filter, whose enforced DENY rules hold key as any/any.
func chainDenies(fc *listener.FilterChain, key string) error {
	var seen []string
	for _, fl := range fc.GetFilters() {
		seen = append(seen, fl.GetName())
		switch fl.GetName() {
		case "envoy.filters.network.rbac":
			cfg := &rbacnet.RBAC{}
			if err := fl.GetTypedConfig().UnmarshalTo(cfg); err != nil {
				return err
			}
			if deniesAll(cfg.GetRules(), key) {
				return nil
			}
		case "envoy.filters.network.http_connection_manager":
			m := &hcm.HttpConnectionManager{}
			if err := fl.GetTypedConfig().UnmarshalTo(m); err != nil {
				return err
			}
			for _, hf := range m.GetHttpFilters() {
				seen = append(seen, hf.GetName())
				if hf.GetName() != "envoy.filters.http.rbac" {
					continue
				}
				cfg := &rbachttp.RBAC{}
				if err := hf.GetTypedConfig().UnmarshalTo(cfg); err != nil {
					return err
				}
				if deniesAll(cfg.GetRules(), key) {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("no RBAC DENY %s among filters %s", key, strings.Join(seen, ", "))
}

func deniesAll(r *rbacv3.RBAC, key string) bool {
	if r.GetAction() != rbacv3.RBAC_DENY {
		return false
	}
	pol := r.GetPolicies()[key]
	anyPerm, anyPrin := false, false
	for _, perm := range pol.GetPermissions() {
		anyPerm = anyPerm || perm.GetAny()
	}
	for _, prin := range pol.GetPrincipals() {
		anyPrin = anyPrin || prin.GetAny()
	}
	return anyPerm && anyPrin
}

// addGoldenSeeds adds every golden input of translate (dir is translate/testdata seen
// from the test's package) to f's seed corpus; it fails when there is none.
func addGoldenSeeds(f *testing.F, dir string) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.in.yaml"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no golden inputs in %s: %v", dir, err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}
