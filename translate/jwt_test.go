package translate

import (
	"slices"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	jwtauthn "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/wardenmesh/warden/watch"
)

func requestAuthn(name, ns, selector, issuer, extra string) string {
	sel := ""
	if selector != "" {
		sel = "  selector: {matchLabels: {" + selector + "}}\n"
	}
	return "---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: " + name +
		", namespace: " + ns + "}\nspec:\n" + sel + "  jwtRules:\n  - issuer: " + issuer + "\n" + extra
}

const inlineKeys = "    jwks: '" + unusableJWKS + "'\n"

// jwtConfig builds the jwt_authn filter for foo/web.
func jwtConfig(t *testing.T, in *watch.Input) (*jwtauthn.JwtAuthentication, []watch.Diagnostic) {
	t.Helper()
	b := newBuilder(NewIndex(in))
	fs := b.jwtHTTPFilters(in.WorkloadByPod("foo", "web"))
	if b.err != nil {
		t.Fatal(b.err)
	}
	if len(fs) == 0 {
		return nil, b.diags
	}
	if len(fs) != 1 || fs[0].GetName() != JWTFilterName {
		t.Fatalf("filters = %v", fs)
	}
	cfg := &jwtauthn.JwtAuthentication{}
	if err := fs[0].GetTypedConfig().UnmarshalTo(cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateAll(); err != nil {
		t.Fatalf("invalid jwt_authn config: %v", err)
	}
	return cfg, b.diags
}

func issuers(cfg *jwtauthn.JwtAuthentication) []string {
	var out []string
	for _, name := range []string{"origins-0", "origins-1", "origins-2", "origins-3"} {
		if p, ok := cfg.GetProviders()[name]; ok {
			out = append(out, p.GetIssuer())
		}
	}
	return out
}

func TestJWTSelection(t *testing.T) {
	in := meshtest.Input(t, meshtest.Join(meshtest.RootNamespace, meshtest.Web)+
		requestAuthn("mesh", "istio-system", "", "d-mesh", inlineKeys)+
		requestAuthn("root-selector", "istio-system", "app: web", "c-root", inlineKeys)+
		requestAuthn("root-other", "istio-system", "app: other", "x-root-other", inlineKeys)+
		requestAuthn("ns", "foo", "", "b-ns", inlineKeys)+
		requestAuthn("sel", "foo", "app: web", "a-sel", inlineKeys)+
		requestAuthn("other-ns", "bar", "", "y-other-ns", inlineKeys))
	cfg, diags := jwtConfig(t, in)
	if cfg == nil {
		t.Fatal("no jwt_authn filter")
	}
	if got, want := issuers(cfg), []string{"a-sel", "b-ns", "c-root", "d-mesh"}; !slices.Equal(got, want) {
		t.Errorf("issuers by provider = %v, want %v", got, want)
	}
	if len(diags) != 0 {
		t.Errorf("diagnostics: %v", diags)
	}
	for name, p := range cfg.GetProviders() {
		if p.GetPayloadInMetadata() != JWTPayloadKey || p.GetForward() {
			t.Errorf("%s: payload_in_metadata %q forward %v", name, p.GetPayloadInMetadata(), p.GetForward())
		}
	}
	req := cfg.GetRules()[0].GetRequires().GetRequiresAny().GetRequirements()
	if len(req) != 5 || req[4].GetRequiresAll() == nil {
		t.Errorf("requirement: want 4 providers then requires_all, got %v", req)
	}
}

func TestJWTNoPolicyNoFilter(t *testing.T) {
	in := meshtest.Input(t, meshtest.Join(meshtest.RootNamespace, meshtest.Web)+requestAuthn("other-ns", "bar", "", "iss", inlineKeys))
	if cfg, _ := jwtConfig(t, in); cfg != nil {
		t.Errorf("filter for a workload no policy selects: %v", cfg)
	}
}

func TestJWTSingleProviderAllowsMissing(t *testing.T) {
	in := meshtest.Input(t, meshtest.Join(meshtest.RootNamespace, meshtest.Web)+requestAuthn("ns", "foo", "", "iss", inlineKeys))
	cfg, _ := jwtConfig(t, in)
	req := cfg.GetRules()[0].GetRequires().GetRequiresAny().GetRequirements()
	if len(req) != 2 || req[0].GetProviderName() != "origins-0" || req[1].GetAllowMissing() == nil {
		t.Errorf("requirement = %v, want origins-0 or allow_missing", req)
	}
	if !cfg.GetBypassCorsPreflight() {
		t.Error("CORS preflight is not bypassed")
	}
}

func TestJWTRejectedPolicyFailsClosed(t *testing.T) {
	// Both jwks and jwksUri: rejected by validation, so its rules are unknown.
	in := meshtest.InputAllowingErrors(t, meshtest.Join(meshtest.RootNamespace, meshtest.Web)+
		requestAuthn("ns", "foo", "", "good", inlineKeys)+
		requestAuthn("bad", "foo", "", "bad", inlineKeys+"    jwksUri: https://example.com/jwks\n"))
	cfg, diags := jwtConfig(t, in)
	if got := cfg.GetRules()[0].GetRequires().GetProviderName(); got != failClosedProvider {
		t.Errorf("requirement = %v, want only %s", cfg.GetRules()[0].GetRequires(), failClosedProvider)
	}
	if p := cfg.GetProviders()[failClosedProvider]; p.GetLocalJwks().GetInlineString() != unusableJWKS {
		t.Errorf("fail-closed provider = %v", p)
	}
	if len(diags) != 1 || diags[0].Name != "bad" || !diags[0].IsError() {
		t.Errorf("diagnostics = %v", diags)
	}
}

func TestJWTJwksURI(t *testing.T) {
	const uri = "http://keys.example.com/jwks.json"
	base := meshtest.Input(t, meshtest.Join(meshtest.RootNamespace, meshtest.Web)+requestAuthn("ns", "foo", "", "remote", "    jwksUri: "+uri+"\n"))
	good := `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`
	cases := []struct {
		name     string
		res      *watch.JWKSResult
		wantKeys string
		wantDiag string // severity, "" for none
	}{
		{"not fetched", nil, unusableJWKS, "error"},
		{"fetch failed", &watch.JWKSResult{Error: "connection refused"}, unusableJWKS, "error"},
		{"fetched", &watch.JWKSResult{JWKS: good}, good, ""},
		{"refresh failed keeps last good", &watch.JWKSResult{JWKS: good, Error: "timeout"}, good, "warning"},
		{"fetched garbage", &watch.JWKSResult{JWKS: "<html>"}, unusableJWKS, "error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := base
			if c.res != nil {
				in = base.WithJWKS(map[string]watch.JWKSResult{uri: *c.res})
			}
			cfg, diags := jwtConfig(t, in)
			p := cfg.GetProviders()["origins-0"]
			if p.GetIssuer() != "remote" || p.GetLocalJwks().GetInlineString() != c.wantKeys {
				t.Errorf("provider = %v, want keys %s", p, c.wantKeys)
			}
			var sev []string
			for _, d := range diags {
				sev = append(sev, d.Severity)
				if d.Field != "spec.jwtRules[0].jwksUri" {
					t.Errorf("diagnostic field %q", d.Field)
				}
			}
			if want := []string{c.wantDiag}; c.wantDiag == "" && len(sev) > 0 || c.wantDiag != "" && !slices.Equal(sev, want) {
				t.Errorf("diagnostics %v, want %q", diags, c.wantDiag)
			}
		})
	}
}

func TestJWTProviderFields(t *testing.T) {
	extra := inlineKeys + `    audiences: [a, b]
    fromHeaders: [{name: x-token, prefix: "Bearer "}]
    fromParams: [tok]
    fromCookies: [sess]
    outputPayloadToHeader: x-payload
    forwardOriginalToken: true
    outputClaimToHeaders: [{header: x-sub, claim: sub}]
    spaceDelimitedClaims: [roles]
`
	in := meshtest.Input(t, meshtest.Join(meshtest.RootNamespace, meshtest.Web)+requestAuthn("ns", "foo", "", "iss", extra))
	cfg, diags := jwtConfig(t, in)
	if len(diags) != 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	p := cfg.GetProviders()["origins-0"]
	checks := map[string]bool{
		"audiences":     slices.Equal(p.GetAudiences(), []string{"a", "b"}),
		"from_headers":  len(p.GetFromHeaders()) == 1 && p.GetFromHeaders()[0].GetName() == "x-token" && p.GetFromHeaders()[0].GetValuePrefix() == "Bearer ",
		"from_params":   slices.Equal(p.GetFromParams(), []string{"tok"}),
		"from_cookies":  slices.Equal(p.GetFromCookies(), []string{"sess"}),
		"payload hdr":   p.GetForwardPayloadHeader() == "x-payload",
		"forward":       p.GetForward(),
		"claim headers": len(p.GetClaimToHeaders()) == 1 && p.GetClaimToHeaders()[0].GetHeaderName() == "x-sub" && p.GetClaimToHeaders()[0].GetClaimName() == "sub",
		"space claims":  slices.Equal(p.GetNormalizePayloadInMetadata().GetSpaceDelimitedClaims(), []string{"permission", "roles", "scope"}),
		"sidecar cache": !p.GetClearRouteCache(),
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("%s wrong in %v", name, p)
		}
	}
}

// TestJWTBeforeRouterOnGateway: the gateway's HCM runs jwt_authn before the router.
func TestJWTBeforeRouterOnGateway(t *testing.T) {
	in := loadCase(t, "jwt-issuer-jwks-inline")
	out := Translate(in, Proxy{Namespace: "istio-system", Pod: "istio-ingressgateway", Gateway: true})
	if len(out.Listeners) != 1 {
		t.Fatalf("listeners: %d", len(out.Listeners))
	}
	l := out.Listeners[0].(*listener.Listener)
	m := &hcm.HttpConnectionManager{}
	if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range m.GetHttpFilters() {
		names = append(names, f.GetName())
	}
	if !slices.Equal(names, []string{JWTFilterName, "envoy.filters.http.router"}) {
		t.Errorf("filters = %v", names)
	}
	if !strings.Contains(l.GetName(), "_80") {
		t.Errorf("listener %s", l.GetName())
	}
}
