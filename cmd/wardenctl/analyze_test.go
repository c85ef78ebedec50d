package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/watch"
	"github.com/wardenmesh/warden/xds"
)

const analyzeMesh = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec:
  containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]
`

// buildWardenctl builds this command once per test binary run, so exit codes are
// checked as a CI job sees them.
func buildWardenctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wardenctl")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runBin(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return "", -1
}

func meshDir(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(analyzeMesh+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// wardenctl analyze in the spirit of istioctl analyze (istioctl/pkg/analyze: exit
// status by the worst message level): 0 with no problem, 1 with warnings only, 2 with
// errors; -o json lists each diagnostic with its location, field and proxies. The
// translation problem is translate's fail-closed invalid CIDR (golden
// authz-invalid-fails-closed), reported for the proxy it affects.
func TestAnalyzeExitCodesAndJSON(t *testing.T) {
	bin := buildWardenctl(t)
	if out, code := runBin(t, bin, "analyze", "-f", meshDir(t, "")); code != 0 || !strings.Contains(out, "no configuration problems") {
		t.Errorf("clean folder: exit %d\n%s", code, out)
	}
	warn := meshDir(t, "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: se, namespace: shop}\nspec: {egress: [{hosts: [./*]}]}\n")
	if out, code := runBin(t, bin, "analyze", "-f", warn); code != 1 || !strings.Contains(out, "WARNING: "+warn+"/mesh.yaml#2 Sidecar shop/se: warning: unknown kind Sidecar (networking.istio.io/v1), skipped") {
		t.Errorf("warnings only: exit %d\n%s", code, out)
	}
	bad := meshDir(t, `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad-cidr, namespace: shop}
spec:
  rules:
  - from:
    - source: {ipBlocks: ["10.0.0.0/33"]}
`)
	out, code := runBin(t, bin, "analyze", "-f", bad, "-o", "json")
	if code != 2 {
		t.Fatalf("errors: exit %d\n%s", code, out)
	}
	var rows []analyzeRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := analyzeRow{Severity: "error", File: bad + "/mesh.yaml", Doc: 2, Kind: "AuthorizationPolicy", Namespace: "shop",
		Name: "bad-cidr", Field: "spec.rules[0].from[0].source.ipBlocks[0]",
		Message: `invalid CIDR "10.0.0.0/33": the workloads it selects deny every request (fail closed)`, Proxies: []string{"web-0.shop"}}
	want.Text = watch.Diagnostic{Severity: want.Severity, Source: watch.Location{File: want.File, Doc: want.Doc}, Kind: want.Kind,
		Namespace: want.Namespace, Name: want.Name, Field: want.Field, Message: want.Message}.String()
	if len(rows) != 1 || rows[0].Text != want.Text || strings.Join(rows[0].Proxies, ",") != "web-0.shop" || rows[0].Field != want.Field || rows[0].Doc != 2 {
		t.Errorf("rows = %+v\nwant [%+v]", rows, want)
	}

	// Against a running wardend: the same client as status, the same exit codes.
	d := watch.Diagnostic{Severity: watch.SeverityError, Kind: "PeerAuthentication", Namespace: "shop", Name: "p",
		Field: "spec.mtls.mode", Message: `invalid value "STRICTT" (want UNSET, DISABLE, PERMISSIVE, STRICT)`}
	srv := replicaWithProblems(t, "a", xds.ConfigProblem{Diagnostic: d})
	if out, code := runBin(t, bin, "analyze", "--server", srv); code != 2 || !strings.Contains(out, "ERROR: "+d.String()) {
		t.Errorf("online: exit %d\n%s", code, out)
	}
	if out, code := runBin(t, bin, "analyze", "--server", replicaWithProblems(t, "b")); code != 0 {
		t.Errorf("online, no problems: exit %d\n%s", code, out)
	}
}
