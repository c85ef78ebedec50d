package runner

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/e2e/scenario"
)

// TestRunnerReportsPassAndFail runs, in both modes, a scenario whose second step must
// fail, and checks the lines and counts a person and CI read.
func TestRunnerReportsPassAndFail(t *testing.T) {
	for _, mode := range []string{ModeDir, ModeKube} {
		t.Run(mode, func(t *testing.T) { testPassAndFail(t, mode) })
	}
}

func testPassAndFail(t *testing.T, mode string) {
	dir := t.TempDir()
	sc := `name: runner-self-test
manifests:
  - inline: |
      apiVersion: v1
      kind: Namespace
      metadata: {name: shop, labels: {istio-injection: enabled}}
      ---
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: web, namespace: shop}
      spec:
        selector: {matchLabels: {app: web}}
        template:
          metadata: {labels: {app: web}}
          spec: {containers: [{name: web, image: echo, ports: [{containerPort: 8080}]}]}
      ---
      apiVersion: v1
      kind: Service
      metadata: {name: web, namespace: shop}
      spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}]}
steps:
  - name: echo answers through the service
    request: {from: outside, url: "http://web.shop/hello", to: "shop/web:8080"}
    expect: {status: 200, bodyContains: "/hello"}
  - name: this expectation is wrong on purpose
    request: {from: outside, url: "http://web.shop/hello", to: "shop/web:8080"}
    expect: {status: 404}
`
	if err := os.WriteFile(filepath.Join(dir, "self.yaml"), []byte(sc), 0o644); err != nil {
		t.Fatal(err)
	}
	scs, err := scenario.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	sum := Run(ctx, scs, Options{Out: &out, Mode: mode})
	text := out.String()
	if sum.Passed != 1 || sum.Failed != 1 {
		t.Fatalf("summary %+v, want 1 passed 1 failed\n%s", sum, text)
	}
	wants := []string{
		"PASS runner-self-test/echo answers through the service\n",
		"FAIL runner-self-test/this expectation is wrong on purpose: want status 404 got status 200",
		"--- envoy web.shop config_dump ---",
		"--- wardend log (tail) ---",
		"\n1 passed, 1 failed\n",
	}
	if mode == ModeKube {
		wants = append(wants, "=== runner-self-test: kube-apiserver ready, deploy/ applied (")
	}
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}
