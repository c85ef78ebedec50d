package authz_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extauthz "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/translate/authz"
)

// customMesh has an HTTP and a gRPC ext_authz provider; multi adds the mesh
// ConfigMap key named after istiod's PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS.
func customMesh(multi bool) string {
	flag := ""
	if multi {
		flag = "  PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS: \"true\"\n"
	}
	return `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
` + flag + `  mesh: |
    extensionProviders:
    - name: http-authz
      envoyExtAuthzHttp: {service: authz.example.com, port: 8000}
    - name: grpc-authz
      envoyExtAuthzGrpc: {service: grpc-authz.example.com, port: 9000}
---
`
}

const (
	customHTTP = `{action: CUSTOM, provider: {name: http-authz}, rules: [{to: [{operation: {paths: ["/http*"]}}]}]}`
	customGRPC = `{action: CUSTOM, provider: {name: grpc-authz}, rules: [{to: [{operation: {paths: ["/grpc*"]}}]}]}`
)

// TestCustomProviders checks what `wardenctl check` says of CUSTOM policies, against
// istio/istio pilot/pkg/security/authz/builder/builder.go buildHTTP/buildTCP:
//   - several providers on one workload without PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS:
//     every provider's rules become RBAC DENY (getBadCustomDenyRules, golden
//     custom-bad-multiple-providers-out1.yaml), the rest of the traffic is untouched;
//   - with it, each provider is called only for its own rules;
//   - an unknown provider: only the requests its rules match are denied (golden
//     custom-bad-out.yaml);
//   - on TCP, CUSTOM rules are built with RBAC_DENY, so HTTP-only fields are dropped
//     and the rule widens (golden tcp/custom-both-http-tcp-out1.yaml); an HTTP
//     provider is not called on TCP ("ignored CUSTOM action with HTTP provider on TCP").
func TestCustomProviders(t *testing.T) {
	two := customMesh(false) + policy("a-http", "foo", customHTTP) + "---\n" + policy("b-grpc", "foo", customGRPC)
	twoMulti := customMesh(true) + policy("a-http", "foo", customHTTP) + "---\n" + policy("b-grpc", "foo", customGRPC)
	unknown := customMesh(false) + policy("missing", "foo", `{action: CUSTOM, provider: {name: nope}, rules: [{to: [{operation: {paths: ["/x"]}}]}]}`)
	tcp := customMesh(false) + policy("tcp", "foo", `{action: CUSTOM, provider: {name: grpc-authz}, rules: [{to: [{operation: {methods: ["GET"], ports: ["9000"]}}]}]}`)
	tcpHTTP := customMesh(false) + policy("tcp", "foo", `{action: CUSTOM, provider: {name: http-authz}, rules: [{to: [{operation: {ports: ["9000"]}}]}]}`)
	cases := []struct {
		name, manifests string
		req             authz.CheckRequest
		decision, rule  string
		custom          []string // providers called
	}{
		{"two providers, default: matched rule denies", two, authz.CheckRequest{FromPod: "sleep.foo", Path: "/http-1"},
			"DENY", "istio-ext-authz-ns[foo]-policy[a-http]-rule[0]-deny-due-to-bad-CUSTOM-action", nil},
		{"two providers, default: other rule denies", two, authz.CheckRequest{FromPod: "sleep.foo", Path: "/grpc-1"},
			"DENY", "istio-ext-authz-ns[foo]-policy[b-grpc]-rule[0]-deny-due-to-bad-CUSTOM-action", nil},
		{"two providers, default: unmatched request allowed", two, authz.CheckRequest{FromPod: "sleep.foo", Path: "/other"},
			"ALLOW", "", nil},
		{"two providers, enabled: only the matching provider is called", twoMulti, authz.CheckRequest{FromPod: "sleep.foo", Path: "/http-1"},
			"ALLOW", "", []string{"http-authz"}},
		{"two providers, enabled: the other provider", twoMulti, authz.CheckRequest{FromPod: "sleep.foo", Path: "/grpc-1"},
			"ALLOW", "", []string{"grpc-authz"}},
		{"unknown provider: matched request denied", unknown, authz.CheckRequest{FromPod: "sleep.foo", Path: "/x"},
			"DENY", "istio-ext-authz-ns[foo]-policy[missing]-rule[0]-deny-due-to-bad-CUSTOM-action", nil},
		{"unknown provider: other requests allowed", unknown, authz.CheckRequest{FromPod: "sleep.foo", Path: "/y"},
			"ALLOW", "", nil},
		{"TCP: gRPC provider rule widened past methods", tcp, authz.CheckRequest{FromPod: "sleep.foo", Port: 9000},
			"ALLOW", "", []string{"grpc-authz"}},
		{"TCP: HTTP provider not called", tcpHTTP, authz.CheckRequest{FromPod: "sleep.foo", Port: 9000},
			"ALLOW", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := translate.Check(meshtest.InputAllowingErrors(t, meshtest.Httpbin, tc.manifests), httpbin, tc.req)
			if got.Decision != tc.decision {
				t.Fatalf("decision %s, want %s (%+v)", got.Decision, tc.decision, got)
			}
			if tc.rule != "" && (got.Rule == nil || got.Rule.Rule != tc.rule) {
				t.Errorf("rule %+v, want %s", got.Rule, tc.rule)
			}
			var called []string
			for _, c := range got.Custom {
				called = append(called, c.Provider)
			}
			if strings.Join(called, ",") != strings.Join(tc.custom, ",") {
				t.Errorf("providers called %v, want %v", called, tc.custom)
			}
		})
	}
}

// TestCustomProviderPrefixes: with PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS each
// provider's rules are named "istio-ext-authz-<provider>-ns[...]" (Istio's
// policyName) and its ext_authz filter requires that prefix (Istio's
// generateFilterMatcherForProvider), so a rule matched for one provider never
// enables another provider's ext_authz.
func TestCustomProviderPrefixes(t *testing.T) {
	in := meshtest.InputAllowingErrors(t, meshtest.Httpbin, customMesh(true)+policy("a-http", "foo", customHTTP)+"---\n"+policy("b-grpc", "foo", customGRPC))
	out := translate.Translate(in, httpbin)
	var keys, prefixes []string
	for _, l := range out.Listeners {
		for _, f := range httpFilters(t, l) {
			switch f.GetName() {
			case "envoy.filters.http.rbac":
				cfg := &rbachttp.RBAC{}
				if err := f.GetTypedConfig().UnmarshalTo(cfg); err != nil {
					t.Fatal(err)
				}
				for k := range cfg.GetShadowRules().GetPolicies() {
					if strings.HasPrefix(k, "istio-ext-authz") {
						keys = append(keys, k)
					}
				}
			case "envoy.filters.http.ext_authz":
				cfg := &extauthz.ExtAuthz{}
				if err := f.GetTypedConfig().UnmarshalTo(cfg); err != nil {
					t.Fatal(err)
				}
				prefixes = append(prefixes, cfg.GetFilterEnabledMetadata().GetValue().GetStringMatch().GetPrefix())
			}
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	slices.Sort(prefixes)
	prefixes = slices.Compact(prefixes)
	if len(keys) != 2 || len(prefixes) != 2 {
		t.Fatalf("no CUSTOM rules (%v) or ext_authz filters (%v)", keys, prefixes)
	}
	for _, k := range keys {
		n := 0
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("rule %s enables %d ext_authz filters (prefixes %v), want exactly 1", k, n, prefixes)
		}
	}
}

// httpFilters lists the HTTP filters of every HTTP connection manager of a listener.
func httpFilters(t *testing.T, r types.Resource) []*hcm.HttpFilter {
	t.Helper()
	l, ok := r.(*listener.Listener)
	if !ok {
		t.Fatalf("not a listener: %T", r)
	}
	var out []*hcm.HttpFilter
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			if f.GetName() != "envoy.filters.network.http_connection_manager" {
				continue
			}
			m := &hcm.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m.GetHttpFilters()...)
		}
	}
	return out
}
