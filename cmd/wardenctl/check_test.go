package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const checkManifests = `apiVersion: v1
kind: Namespace
metadata: {name: istioinaction, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: webapp, namespace: istioinaction, labels: {app: webapp}}
spec:
  serviceAccountName: webapp
  containers: [{name: app, image: x, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-catalog, namespace: istioinaction}
spec: {rules: [{to: [{operation: {paths: ["/api/catalog*"]}}]}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry-deny, namespace: istioinaction, annotations: {istio.io/dry-run: "true"}}
spec: {action: DENY, rules: [{to: [{operation: {paths: ["/api/catalog/secret"]}}]}]}
`

func TestCheckOffline(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(checkManifests), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		root := newRoot()
		root.SetOut(&out)
		root.SetArgs(append([]string{"check", "webapp.istioinaction", "--config-dir", dir}, args...))
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.String()
	}
	if got := run("--path", "/hello/world"); !strings.HasPrefix(got, "DENY\n") || !strings.Contains(got, "no ALLOW policy matched") {
		t.Errorf("/hello/world:\n%s", got)
	}
	got := run("--from", "cluster.local/ns/default/sa/sleep", "--path", "/api/catalog/secret")
	for _, want := range []string{"ALLOW\n", "istioinaction/allow-catalog", "spiffe://cluster.local/ns/default/sa/sleep",
		"dry-run DENY policies would DENY: istioinaction/dry-deny"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if got := run("--path", "/api/catalog", "-o", "json"); !strings.Contains(got, `"decision": "ALLOW"`) {
		t.Errorf("json:\n%s", got)
	}
}
