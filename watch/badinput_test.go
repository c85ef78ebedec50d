package watch_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/internal/golden"
	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/translate/authz"
	"github.com/wardenmesh/warden/watch"
)

// The mesh every bad input is applied to: shop is STRICT and only shop may call web.
var badInputBase = map[string]string{
	"ns.yaml": `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}, annotations: {warden.io/pod-ip: 10.0.0.10}}
spec:
  serviceAccountName: web
  containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: cli-0, namespace: other, labels: {app: cli}, annotations: {warden.io/pod-ip: 10.0.0.20}}
spec:
  serviceAccountName: cli
  containers: [{name: cli, image: cli}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
`,
	"pa.yaml": paDoc("default", "STRICT"),
	"ap.yaml": `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-shop, namespace: shop}
spec:
  rules:
  - from:
    - source: {namespaces: [shop]}
`,
}

func paDoc(name, mode string) string {
	return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " + name + ", namespace: shop}\nspec: {mtls: {mode: " + mode + "}}\n"
}

func apDoc(name, spec string) string {
	return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " + name + ", namespace: shop}\nspec:\n" + spec
}

func raDoc(spec string) string {
	return "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: shop}\nspec:\n" + spec
}

// badInputs is the catalogue documented in docs/bad-input.md: each class is one file
// written over the base mesh (replacing a base file, or new).
var badInputs = []struct{ name, file, content string }{
	{"yaml-syntax", "pa.yaml", "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nspec: {mtls: [\n"},
	{"yaml-tab-indent", "pa.yaml", "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\tmetadata: {name: default}\n"},
	{"yaml-duplicate-key", "pa.yaml", paDoc("default", "STRICT") + "spec: {mtls: {mode: DISABLE}}\n"},
	{"document-not-object", "pa.yaml", "- a\n- b\n"},
	{"list-items-not-list", "pa.yaml", "apiVersion: v1\nkind: List\nitems: {a: b}\n"},
	{"missing-kind", "pa.yaml", "apiVersion: security.istio.io/v1\nmetadata: {name: default, namespace: shop}\n"},
	{"missing-apiversion", "pa.yaml", "kind: PeerAuthentication\nmetadata: {name: default, namespace: shop}\n"},
	{"missing-name", "pa.yaml", "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {namespace: shop}\nspec: {mtls: {mode: STRICT}}\n"},
	{"cut-off-kind", "pa.yaml", "apiVersion: security.istio.io/v1\nkind: Peer"},
	{"unserved-api-version", "pa.yaml", strings.Replace(paDoc("default", "STRICT"), "/v1", "/v2", 1)},
	{"empty-file", "pa.yaml", ""},
	{"truncated-document", "pa.yaml", paDoc("default", "STRICT")[:len(paDoc("default", "STRICT"))-6]},
	{"wrong-type", "pa.yaml", strings.Replace(paDoc("default", "STRICT"), "mode: STRICT", "mode: [STRICT]", 1)},
	{"wrong-type-metadata", "pa.yaml", strings.Replace(paDoc("default", "STRICT"), "namespace: shop}", "namespace: shop, labels: [a]}", 1)},
	{"unknown-field", "pa.yaml", strings.Replace(paDoc("default", "STRICT"), "mode: STRICT", "mood: STRICT", 1)},
	{"unknown-top-level-field", "pa.yaml", paDoc("default", "STRICT") + "specs: {}\n"},
	{"unknown-enum", "pa.yaml", paDoc("default", "STRICTT")},
	{"lowercase-enum", "pa.yaml", paDoc("default", "strict")},
	{"non-utf8", "pa.yaml", paDoc("default", "STRICT\xff")},
	{"alias-bomb", "bomb.yaml", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"},
	{"oversized-object", "big.yaml", apDoc("big", "  rules: [{}]\n") + "# " + strings.Repeat("x", watch.MaxObjectBytes) + "\n"},
	{"duplicate-across-files", "a-dup.yaml", paDoc("default", "PERMISSIVE")},
	{"conflicting-peerauthentications", "pa2.yaml", paDoc("z-permissive", "PERMISSIVE")},
	{"port-level-without-selector", "pa2.yaml", "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: ports, namespace: shop}\nspec:\n  portLevelMtls: {8080: {mode: DISABLE}}\n"},
	{"bad-cidr", "ap-bad.yaml", apDoc("bad-cidr", "  rules:\n  - from:\n    - source: {ipBlocks: [\"10.0.0.0/33\"]}\n")},
	{"unknown-when-key", "ap-bad.yaml", apDoc("bad-when", "  rules:\n  - when:\n    - {key: request.headers, values: [a]}\n")},
	{"principal-inner-wildcard", "ap-bad.yaml", apDoc("bad-principal", "  action: DENY\n  rules:\n  - from:\n    - source: {principals: [\"cluster.local/ns/*/sa/cli\"]}\n")},
	{"selector-and-targetref", "ap-bad.yaml", apDoc("bad-target", "  selector: {matchLabels: {app: web}}\n  targetRef: {kind: Service, name: web}\n  rules: [{}]\n")},
	{"invalid-path", "ap-bad.yaml", apDoc("bad-path", "  rules:\n  - to:\n    - operation: {paths: [\"/a/*/b\"]}\n")},
	{"unknown-action", "ap-bad.yaml", apDoc("bad-action", "  action: ALOW\n  rules: [{}]\n")},
	{"missing-custom-provider", "ap-bad.yaml", apDoc("bad-custom", "  action: CUSTOM\n  provider: {name: nope}\n  rules: [{}]\n")},
	{"bad-selector", "ap-bad.yaml", apDoc("bad-selector", "  selector: {matchLabels: {app: \"web*\"}}\n  rules: [{}]\n")},
	{"invalid-jwks", "ra.yaml", raDoc("  jwtRules:\n  - {issuer: https://issuer.example, jwks: \"not json\"}\n")},
	{"jwt-missing-issuer", "ra.yaml", raDoc("  jwtRules:\n  - {jwksUri: https://issuer.example/keys}\n")},
	{"missing-credential-secret", "dr.yaml", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web-tls, namespace: shop}\nspec:\n  host: web.shop.svc.cluster.local\n  trafficPolicy: {tls: {mode: SIMPLE, credentialName: web-ca}}\n"},
	{"bad-mesh-config", "mesh.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: \"trustDomain: [x\"\n"},
}

func writeMesh(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// load decodes dir on top of prev, as the directory watcher does.
func load(t *testing.T, dir string, prev *watch.Input) *watch.Input {
	t.Helper()
	objs, diags, err := watch.DecodeDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	objs, diags = watch.RetainLastGood(prev, objs, diags)
	return watch.Build(objs, diags)
}

var webProxy = translate.Proxy{ID: "web-0.shop", Namespace: "shop", Pod: "web-0", ServiceAccount: "web"}

// probes are requests to web-0.shop; with the base mesh only the first is allowed.
var probes = []authz.CheckRequest{
	{FromPod: "web-0.shop", Port: 8080, Path: "/"},
	{FromPod: "cli-0.other", Port: 8080, Path: "/"},
	{FromPod: "cli-0.other", Port: 8080, Path: "/admin"},
	{SourceIP: "10.9.9.9", Port: 8080, Path: "/"}, // plaintext, from outside the mesh
}

func verdicts(in *watch.Input) []string {
	var out []string
	for _, p := range probes {
		r := translate.Check(in, webProxy, p)
		out = append(out, r.MTLSMode+" "+r.Decision)
	}
	return out
}

// TestBadInputCatalogue applies each class of bad input to a running configuration
// (as the directory watcher does: decode, retain, build) and checks three things:
// the exact diagnostics (golden testdata/badinput.golden.txt), that what served
// before keeps serving (objects of a rejected version or broken file are retained:
// the accepted version is unchanged unless the bad object is new and accepted for
// translation to fail closed), and that nothing fails open: no probe request to
// web-0.shop is allowed, and no port is less strict, than before. Istio references:
// the validating webhook (pkg/config/validation) for what is rejected, and
// pilot/pkg/security/authz/builder (fail closed: an untranslatable policy denies).
func TestBadInputCatalogue(t *testing.T) {
	if len(badInputs) < 30 {
		t.Fatalf("%d classes, the catalogue promises at least 30", len(badInputs))
	}
	var report strings.Builder
	for _, tc := range badInputs {
		dir := t.TempDir()
		writeMesh(t, dir, badInputBase)
		good := load(t, dir, nil)
		if len(good.Diagnostics) != 0 {
			t.Fatalf("base mesh has diagnostics: %v", good.Diagnostics)
		}
		before := verdicts(good)
		writeMesh(t, dir, map[string]string{tc.file: tc.content})
		bad := load(t, dir, good)

		fmt.Fprintf(&report, "## %s (%s)\n", tc.name, tc.file)
		diags := append([]watch.Diagnostic(nil), bad.Diagnostics...)
		diags = append(diags, translate.Translate(bad, webProxy).Diagnostics...)
		if len(diags) == 0 {
			t.Errorf("%s: no diagnostic", tc.name)
		}
		for _, d := range diags {
			fmt.Fprintf(&report, "%s\n", strings.ReplaceAll(d.String(), dir, "DIR"))
		}
		if _, replaced := badInputBase[tc.file]; replaced && bad.Version != good.Version {
			t.Errorf("%s: a bad version of %s changed what serves (version %s, was %s)", tc.name, tc.file, bad.Version, good.Version)
		}
		after := verdicts(bad)
		for i := range probes {
			if weaker(before[i], after[i]) {
				t.Errorf("%s: fails open for %+v: %s, was %s", tc.name, probes[i], after[i], before[i])
			}
		}
	}
	golden.Check(t, "testdata/badinput.golden.txt", []byte(report.String()))
}

// weaker reports whether verdict b ("<mtls mode> <decision>") allows more than a.
func weaker(a, b string) bool {
	rank := map[string]int{"STRICT": 0, "PERMISSIVE": 1, "DISABLE": 2}
	am, ad, _ := strings.Cut(a, " ")
	bm, bd, _ := strings.Cut(b, " ")
	return (ad == "DENY" && bd != "DENY") || rank[bm] > rank[am]
}
