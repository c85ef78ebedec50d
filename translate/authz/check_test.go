package authz_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/translate/authz"
)

var httpbin = translate.Proxy{ID: "httpbin.foo", Namespace: "foo", Pod: "httpbin"}

func TestCheck(t *testing.T) {
	cases := []struct {
		name      string
		manifests string
		req       authz.CheckRequest
		decision  string
		rule      string // "" when no rule decided
		reason    string // substring
	}{
		{
			name:     "no policy allows",
			req:      authz.CheckRequest{FromPod: "sleep.foo", Path: "/anything"},
			decision: "ALLOW", reason: "no ALLOW policy applies",
		},
		{
			name:      "allow-nothing denies",
			manifests: policy("allow-nothing", "foo", `{}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo"},
			decision:  "DENY", reason: "no ALLOW policy matched",
		},
		{
			name:      "path prefix allows",
			manifests: policy("catalog", "foo", `{rules: [{to: [{operation: {paths: ["/api/catalog*"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Path: "/api/catalog/items?x=1"},
			decision:  "ALLOW", rule: "ns[foo]-policy[catalog]-rule[0]",
		},
		{
			name:      "path prefix does not match other path",
			manifests: policy("catalog", "foo", `{rules: [{to: [{operation: {paths: ["/api/catalog*"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Path: "/hello/world"},
			decision:  "DENY",
		},
		{
			name:      "normalised path is matched",
			manifests: policy("deny-admin", "foo", `{action: DENY, rules: [{to: [{operation: {paths: ["/admin"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Path: "/public/../admin"},
			decision:  "DENY", rule: "ns[foo]-policy[deny-admin]-rule[0]",
		},
		{
			name: "deny wins over allow",
			manifests: policy("allow-all", "foo", `{rules: [{}]}`) + "---\n" +
				policy("deny-delete", "istio-system", `{action: DENY, rules: [{to: [{operation: {methods: ["DELETE"]}}]}]}`),
			req:      authz.CheckRequest{FromPod: "sleep.foo", Method: "DELETE"},
			decision: "DENY", rule: "ns[istio-system]-policy[deny-delete]-rule[0]",
		},
		{
			name:      "principal of the calling pod",
			manifests: policy("viewer", "foo", `{rules: [{from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo"},
			decision:  "ALLOW", rule: "ns[foo]-policy[viewer]-rule[0]",
		},
		{
			name:      "sidecar-less caller has no principal",
			manifests: policy("ns-only", "foo", `{rules: [{from: [{source: {namespaces: ["legacy"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.legacy"},
			decision:  "DENY", reason: "no ALLOW policy matched",
		},
		{
			name:      "explicit principal",
			manifests: policy("ns-only", "foo", `{rules: [{from: [{source: {namespaces: ["legacy"]}}]}]}`),
			req:       authz.CheckRequest{Principal: "cluster.local/ns/legacy/sa/sleep"},
			decision:  "ALLOW",
		},
		{
			name: "strict refuses plaintext",
			manifests: `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec: {mtls: {mode: STRICT}}
`,
			req:      authz.CheckRequest{FromPod: "sleep.legacy"},
			decision: "DENY", reason: "requires mTLS",
		},
		{
			name:      "hosts ignore case, but not the port",
			manifests: policy("hosts", "foo", `{rules: [{to: [{operation: {hosts: ["HTTPBIN.foo"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Host: "httpbin.FOO"},
			decision:  "ALLOW",
		},
		{
			name:      "host with port does not match",
			manifests: policy("hosts", "foo", `{rules: [{to: [{operation: {hosts: ["httpbin.foo"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Host: "httpbin.foo:8000"},
			decision:  "DENY",
		},
		{
			name:      "header notValues match a missing header",
			manifests: policy("hdr", "foo", `{rules: [{when: [{key: "request.headers[x-foo]", notValues: ["bar"]}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo"},
			decision:  "ALLOW",
		},
		{
			name:      "header notValues reject the value",
			manifests: policy("hdr", "foo", `{rules: [{when: [{key: "request.headers[x-foo]", notValues: ["bar"]}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Headers: map[string]string{"X-Foo": "bar"}},
			decision:  "DENY",
		},
		{
			name:      "request principal needs sub",
			manifests: policy("jwt", "foo", `{rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Claims: map[string]any{"iss": "https://issuer"}},
			decision:  "DENY",
		},
		// requestPrincipals: istio/istio pilot/pkg/security/authz/model/generator.go
		// requestPrincipalGenerator honours "*" only at the start or end of the whole
		// "iss/sub" value; "iss/*-1" is iss exact "iss" and sub exact "*-1".
		{
			name:      "requestPrincipals * inside sub is literal",
			manifests: policy("jwt", "foo", `{rules: [{from: [{source: {requestPrincipals: ["iss/*-1"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Claims: map[string]any{"iss": "iss", "sub": "user-1"}},
			decision:  "DENY", reason: "no ALLOW policy matched",
		},
		{
			name:      "requestPrincipals * inside sub matches itself",
			manifests: policy("jwt", "foo", `{rules: [{from: [{source: {requestPrincipals: ["iss/*-1"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Claims: map[string]any{"iss": "iss", "sub": "*-1"}},
			decision:  "ALLOW", rule: "ns[foo]-policy[jwt]-rule[0]",
		},
		{
			name:      "requestPrincipals * at the end of iss is literal",
			manifests: policy("jwt", "foo", `{rules: [{from: [{source: {requestPrincipals: ["issuer-*/sub"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Claims: map[string]any{"iss": "issuer-a", "sub": "sub"}},
			decision:  "DENY", reason: "no ALLOW policy matched",
		},
		{
			name:      "requestPrincipals leading * is a suffix of iss, sub exact",
			manifests: policy("jwt", "foo", `{rules: [{from: [{source: {requestPrincipals: ["*.example.com/sub*"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Claims: map[string]any{"iss": "https://a.example.com", "sub": "sub-x"}},
			decision:  "DENY", reason: "no ALLOW policy matched",
		},
		{
			name:      "requestPrincipals trailing * is a prefix of sub",
			manifests: policy("jwt", "foo", `{rules: [{from: [{source: {requestPrincipals: ["https://issuer/user-*"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Claims: map[string]any{"iss": "https://issuer", "sub": "user-7"}},
			decision:  "ALLOW", rule: "ns[foo]-policy[jwt]-rule[0]",
		},
		// Trust-domain aliases: istio/istio pilot/pkg/security/authz/model/model.go
		// MigrateTrustDomain expands trustDomains, notTrustDomains and
		// source.trustDomain with trustdomain/bundle.go ExpandTrustDomainAliases, so
		// an alias stands for the local trust domain (cluster.local here).
		{
			name:      "trustDomains alias admits local callers",
			manifests: aliasMesh + policy("td", "foo", `{rules: [{from: [{source: {trustDomains: ["old.example.org"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo"},
			decision:  "ALLOW", rule: "ns[foo]-policy[td]-rule[0]",
		},
		{
			name:      "notTrustDomains alias keeps local callers out",
			manifests: aliasMesh + policy("td", "foo", `{rules: [{from: [{source: {notTrustDomains: ["old.example.org"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo"},
			decision:  "DENY", reason: "no ALLOW policy matched",
		},
		{
			name:      "notTrustDomains alias still admits other trust domains",
			manifests: aliasMesh + policy("td", "foo", `{rules: [{from: [{source: {notTrustDomains: ["old.example.org"]}}]}]}`),
			req:       authz.CheckRequest{Principal: "other.org/ns/foo/sa/sleep", SourceIP: "10.0.0.20"},
			decision:  "ALLOW", rule: "ns[foo]-policy[td]-rule[0]",
		},
		{
			name:      "source.trustDomain alias admits local callers",
			manifests: aliasMesh + policy("td", "foo", `{rules: [{when: [{key: source.trustDomain, values: ["old.example.org"]}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo"},
			decision:  "ALLOW", rule: "ns[foo]-policy[td]-rule[0]",
		},
		{
			name:      "source.trustDomain notValues alias keeps local callers out",
			manifests: aliasMesh + policy("td", "foo", `{action: DENY, rules: [{when: [{key: source.trustDomain, notValues: ["old.example.org"]}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo"},
			decision:  "ALLOW", reason: "no ALLOW policy applies",
		},
		{
			name:      "claims list and scope splitting",
			manifests: policy("jwt", "foo", `{rules: [{when: [{key: "request.auth.claims[scope]", values: ["write"]}, {key: "request.auth.claims[groups]", values: ["admins"]}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Claims: map[string]any{"scope": "read write", "groups": []any{"users", "admins"}}},
			decision:  "ALLOW",
		},
		{
			name:      "uri template",
			manifests: policy("tmpl", "foo", `{rules: [{to: [{operation: {paths: ["/items/{*}/reviews", "/files/{**}"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Path: "/files/a/b/c.txt"},
			decision:  "ALLOW",
		},
		{
			name:      "uri template single segment",
			manifests: policy("tmpl", "foo", `{rules: [{to: [{operation: {paths: ["/items/{*}/reviews"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Path: "/items/a/b/reviews"},
			decision:  "DENY",
		},
		{
			// istio/istio pkg/config/security/security.go CheckValidPathTemplate accepts
			// literal segments after {**}; matcher/template.go makes it "/store/**/cart".
			name:      "uri template {**} then a literal",
			manifests: policy("tmpl", "foo", `{rules: [{to: [{operation: {paths: ["/store/{**}/cart"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Path: "/store/a/b/cart"},
			decision:  "ALLOW", rule: "ns[foo]-policy[tmpl]-rule[0]",
		},
		{
			name:      "uri template {**} then a literal, other tail",
			manifests: policy("tmpl", "foo", `{rules: [{to: [{operation: {paths: ["/store/{**}/cart"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Path: "/store/a/b/checkout"},
			decision:  "DENY", reason: "no ALLOW policy matched",
		},
		{
			name:      "TCP port: ALLOW rule with methods is dropped",
			manifests: policy("get", "foo", `{rules: [{to: [{operation: {methods: ["GET"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Port: 9000},
			decision:  "DENY", reason: "no ALLOW policy matched",
		},
		{
			name:      "TCP port: DENY rule widens",
			manifests: policy("deny-get", "foo", `{action: DENY, rules: [{to: [{operation: {methods: ["GET"], ports: ["9000"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo", Port: 9000},
			decision:  "DENY", rule: "ns[foo]-policy[deny-get]-rule[0]",
		},
		{
			name:      "invalid policy fails closed",
			manifests: policy("bad", "foo", `{rules: [{from: [{source: {ipBlocks: ["not-an-ip"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo"},
			decision:  "DENY", rule: "ns[foo]-policy[bad]-rule[invalid]", reason: "invalid",
		},
		{
			name:      "rejected policy fails closed for its namespace",
			manifests: policy("deny-nothing", "foo", `{action: DENY, rules: [{from: [{source: {}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo"},
			decision:  "DENY", rule: "ns[foo]-policy[deny-nothing]-rule[invalid]",
		},
		{
			name:      "mesh SNI of the caller's sidecar",
			manifests: policy("sni", "foo", `{rules: [{when: [{key: connection.sni, values: ["outbound_.8000_._.httpbin.foo.svc.cluster.local"]}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo"},
			decision:  "ALLOW",
		},
		{
			name:      "no SNI from a plaintext caller",
			manifests: policy("sni", "foo", `{rules: [{when: [{key: connection.sni, values: ["outbound_.8000_._.httpbin.foo.svc.cluster.local"]}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.legacy"},
			decision:  "DENY",
		},
		{
			name:      "source ip blocks",
			manifests: policy("ips", "foo", `{rules: [{from: [{source: {ipBlocks: ["10.0.0.0/24"], notIpBlocks: ["10.0.0.21"]}}]}]}`),
			req:       authz.CheckRequest{FromPod: "sleep.foo"},
			decision:  "ALLOW",
		},
		{
			name: "dry-run changes nothing",
			manifests: `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry, namespace: foo, annotations: {istio.io/dry-run: "true"}}
spec: {action: DENY, rules: [{to: [{operation: {methods: ["GET"]}}]}]}
`,
			req:      authz.CheckRequest{FromPod: "sleep.foo"},
			decision: "ALLOW", reason: "no ALLOW policy applies",
		},
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
			if !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("reason %q, want it to contain %q", got.Reason, tc.reason)
			}
		})
	}
}

// TestManyPrincipalsMerge checks the decisions of a merged principal list (the
// merge itself: TestManyPrincipalsMergeShape).
func TestManyPrincipalsMerge(t *testing.T) {
	var list []string
	for i := range 50 {
		list = append(list, fmt.Sprintf("%q", fmt.Sprintf("cluster.local/ns/team-%d/sa/caller", i)))
	}
	list = append(list, `"cluster.local/ns/foo/sa/sleep"`, `"prefix*"`)
	in := meshtest.InputAllowingErrors(t, meshtest.Httpbin, policy("many", "foo", `{rules: [{from: [{source: {principals: [`+strings.Join(list, ", ")+`]}}]}]}`))
	for _, tc := range []struct{ principal, decision string }{
		{"cluster.local/ns/foo/sa/sleep", "ALLOW"},
		{"cluster.local/ns/team-49/sa/caller", "ALLOW"},
		{"cluster.local/ns/team-50/sa/caller", "DENY"},
		{"cluster.local/ns/team-4/sa/caller-x", "DENY"},
		{"prefix-anything", "ALLOW"},
	} {
		if got := translate.Check(in, httpbin, authz.CheckRequest{Principal: tc.principal}); got.Decision != tc.decision {
			t.Errorf("%s: %s, want %s", tc.principal, got.Decision, tc.decision)
		}
	}
}

func TestCheckDryRunAndCustom(t *testing.T) {
	in := meshtest.InputAllowingErrors(t, meshtest.Httpbin, `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    extensionProviders:
    - name: authz
      envoyExtAuthzHttp: {service: authz.example.com, port: 8000}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry-deny, namespace: foo, annotations: {istio.io/dry-run: "true"}}
spec: {action: DENY, rules: [{to: [{operation: {methods: ["GET"]}}]}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry-allow, namespace: foo, annotations: {istio.io/dry-run: "true"}}
spec: {rules: [{to: [{operation: {methods: ["POST"]}}]}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: foo}
spec: {action: CUSTOM, provider: {name: authz}, rules: [{to: [{operation: {paths: ["/secure*"]}}]}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: foo}
spec: {action: AUDIT, rules: [{}]}
`)
	got := translate.Check(in, httpbin, authz.CheckRequest{FromPod: "sleep.foo", Path: "/secure/x"})
	if got.Decision != "ALLOW" {
		t.Fatalf("decision %s, want ALLOW: %+v", got.Decision, got)
	}
	if len(got.Custom) != 1 || got.Custom[0].Provider != "authz" || got.Custom[0].Rule != "istio-ext-authz-ns[foo]-policy[ext]-rule[0]" {
		t.Errorf("custom %+v", got.Custom)
	}
	if len(got.Audit) != 1 || got.Audit[0].Policy != "foo/audit" {
		t.Errorf("audit %+v", got.Audit)
	}
	want := []authz.DryRunResult{
		{Action: "DENY", Decision: "DENY", Matched: &authz.RuleRef{Policy: "foo/dry-deny", Rule: "ns[foo]-policy[dry-deny]-rule[0]"}},
		{Action: "ALLOW", Decision: "DENY"},
	}
	if len(got.DryRun) != 2 || got.DryRun[0].Decision != want[0].Decision || *got.DryRun[0].Matched != *want[0].Matched ||
		got.DryRun[1].Decision != want[1].Decision || got.DryRun[1].Matched != nil {
		t.Errorf("dry run %+v, want %+v", got.DryRun, want)
	}
	if other := translate.Check(in, httpbin, authz.CheckRequest{FromPod: "sleep.foo", Path: "/public"}); len(other.Custom) != 0 {
		t.Errorf("a request outside the CUSTOM rules must not reach the provider: %+v", other.Custom)
	}
}

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/a/./b/../c", "/a/c"},
		{"/a/%62c?x=1", "/a/bc"},
		{`/a\b`, "/a/b"},
		{"/a//b", "/a//b"},
		{"/..", "/"},
	} {
		if got := authz.NormalizePath(tc.in, 0); got != tc.want {
			t.Errorf("authz.NormalizePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// aliasMesh keeps the default trust domain (cluster.local) and adds an alias.
const aliasMesh = `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    trustDomainAliases: ["old.example.org"]
---
`

func policy(name, ns, spec string) string {
	return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec: " + spec + "\n"
}

// TestEmptyShapes pins what every "empty" AuthorizationPolicy shape does, against
// Istio (issue 12, item 6). Sources: the API reference of AuthorizationPolicy.rules
// ("If not set, the match will never occur") and of selector ("If not set, the policy
// will be applied to all workloads in the same namespace"); builder.go, which renders
// a policy without rules as rbacPolicyMatchNever whatever its action; model.go New,
// where an absent from/to/when adds no condition; pkg/config/validation
// ValidateAuthorizationPolicy, which refuses null or empty sources and operations
// (Warden rejects them too and fails closed for the namespace, as for any rejected
// policy without a good version) and DENY/CUSTOM without rules (Warden serves those,
// matching nothing, with a warning: refusing them would deny everything instead).
func TestEmptyShapes(t *testing.T) {
	cases := []struct {
		name     string
		spec     string
		decision string
		diag     string // "error: <field>" or "warning: <field>" of the decoder, "" for none
	}{
		{"ALLOW without rules allows nothing", `{}`, "DENY", ""},
		{"ALLOW with rules: [] allows nothing", `{rules: []}`, "DENY", ""},
		{"DENY without rules denies nothing", `{action: DENY}`, "ALLOW", "warning: spec.rules"},
		{"AUDIT without rules changes nothing", `{action: AUDIT}`, "ALLOW", "warning: spec.rules"},
		{"CUSTOM without rules never calls the provider", `{action: CUSTOM, provider: {name: authz}}`, "ALLOW", "warning: spec.rules"},
		{"ALLOW rules: [{}] allows every request", `{rules: [{}]}`, "ALLOW", ""},
		{"DENY rules: [{}] denies every request", `{action: DENY, rules: [{}]}`, "DENY", ""},
		{"ALLOW rule without from, to or when allows all", `{rules: [{from: [], to: [], when: []}]}`, "ALLOW", ""},
		{"from entry without source is rejected", `{action: DENY, rules: [{from: [{}]}]}`, "DENY", "error: spec.rules[0].from[0].source"},
		{"empty source is rejected", `{rules: [{from: [{source: {}}]}]}`, "DENY", "error: spec.rules[0].from[0].source"},
		{"empty operation is rejected", `{rules: [{to: [{operation: {}}]}]}`, "DENY", "error: spec.rules[0].to[0].operation"},
		{"when without values is rejected", `{rules: [{when: [{key: source.namespace}]}]}`, "DENY", ""},
		{"selector: {} is namespace-wide", `{selector: {}, rules: [{from: [{source: {namespaces: [other]}}]}]}`, "DENY", ""},
		{"selector with empty matchLabels is namespace-wide", `{selector: {matchLabels: {}}, rules: [{from: [{source: {namespaces: [other]}}]}]}`, "DENY", ""},
		{"a selector of other labels does not apply", `{selector: {matchLabels: {app: other}}}`, "ALLOW", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			manifests := policy("p", "foo", c.spec)
			if strings.Contains(c.spec, "CUSTOM") {
				manifests = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\n" +
					"data:\n  mesh: |\n    extensionProviders:\n    - {name: authz, envoyExtAuthzHttp: {service: authz.example.com, port: 8000}}\n---\n" + manifests
			}
			in := meshtest.InputAllowingErrors(t, meshtest.Httpbin, manifests)
			var got []string
			for _, d := range in.Diagnostics {
				got = append(got, d.Severity+": "+d.Field)
			}
			if want := []string{c.diag}; (c.diag == "" && len(got) != 0) || (c.diag != "" && strings.Join(got, ",") != c.diag) {
				t.Fatalf("decoder diagnostics %v, want %v (%v)", got, want, in.Diagnostics)
			}
			res := translate.Check(in, httpbin, authz.CheckRequest{FromPod: "sleep.foo", Path: "/x"})
			if res.Decision != c.decision {
				t.Fatalf("decision %s, want %s (%s)", res.Decision, c.decision, res.Reason)
			}
			if strings.Contains(c.spec, "CUSTOM") && len(res.Custom) != 0 {
				t.Fatalf("a CUSTOM policy without rules must not reach its provider: %+v", res.Custom)
			}
		})
	}
}
