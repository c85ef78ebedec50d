package authz

import (
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	extauthz "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
)

const customMesh = `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    extensionProviders:
    - name: both
      envoyExtAuthzHttp:
        service: authz.example.com
        port: 8000
        includeRequestHeadersInCheck: ["x-new"]
        includeHeadersInCheck: ["x-old"]
    - name: old-only
      envoyExtAuthzHttp:
        service: authz.example.com
        port: 8000
        includeHeadersInCheck: ["x-old"]
`

func customPolicy(name, provider string) string {
	return "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " + name +
		", namespace: foo}\nspec: {action: CUSTOM, provider: {name: " + provider + "}, rules: [{to: [{operation: {paths: [\"/" + name + "\"]}}]}]}\n"
}

// TestIncludeHeadersInCheck follows istio/istio pilot/pkg/security/authz/builder/
// extauthz.go generateHTTPConfig: "IncludeHeadersInCheck is deprecated, only use it
// if IncludeRequestHeadersInCheck is not set".
func TestIncludeHeadersInCheck(t *testing.T) {
	for provider, want := range map[string][]string{"both": {"x-new"}, "old-only": {"x-old"}} {
		in := meshtest.Input(t, customMesh+customPolicy("p", provider))
		custom, _, diags, err := NewIndex(in).Set(in.AuthorizationPolicies, nil).HTTPFilters(in)
		if err != nil || len(diags) != 0 || len(custom) != 2 {
			t.Fatalf("%s: %d filters, diags %v, err %v", provider, len(custom), diags, err)
		}
		cfg := &extauthz.ExtAuthz{}
		if err := custom[1].GetTypedConfig().UnmarshalTo(cfg); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range cfg.GetAllowedHeaders().GetPatterns() {
			got = append(got, p.GetExact())
		}
		if len(got) != len(want) || got[0] != want[0] {
			t.Errorf("%s: allowed headers %v, want %v", provider, got, want)
		}
	}
}
