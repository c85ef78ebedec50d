package kube

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The CRDs in deploy/ are the seven Warden watches, unchanged from istio.io/api at the
// version in go.mod.
func TestDeployCRDsMatchIstioAPI(t *testing.T) {
	root := repoRoot(t)
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil {
		t.Fatalf("go list istio.io/api: %v", err)
	}
	upstream, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile(filepath.Join(root, "deploy", "10-istio-crds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`(?m)^  name: (\S+)$`)
	byName := func(data []byte) map[string]string {
		m := map[string]string{}
		for _, doc := range bytes.Split(data, []byte("\n---\n")) {
			if n := name.FindSubmatch(doc); n != nil {
				m[string(n[1])] = strings.Trim(strings.TrimPrefix(string(doc), "---\n"), "\n")
			}
		}
		return m
	}
	up, got := byName(upstream), byName(ours)
	want := []string{
		"peerauthentications.security.istio.io", "requestauthentications.security.istio.io", "authorizationpolicies.security.istio.io",
		"destinationrules.networking.istio.io", "gateways.networking.istio.io", "virtualservices.networking.istio.io",
		"serviceentries.networking.istio.io",
	}
	if len(got) != len(want) {
		t.Fatalf("deploy/10-istio-crds.yaml has %d CRDs, want %d", len(got), len(want))
	}
	for _, n := range want {
		if got[n] == "" || got[n] != up[n] {
			t.Errorf("CRD %s in deploy/ differs from istio.io/api's (or is missing)", n)
		}
	}
}

// deploy/kind/up.sh needs Docker and cannot run here; its syntax can be checked.
func TestKindScriptParses(t *testing.T) {
	script := filepath.Join(repoRoot(t), "deploy", "kind", "up.sh")
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n %s: %v\n%s", script, err, out)
	}
}
