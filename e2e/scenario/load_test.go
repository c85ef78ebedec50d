package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadFixtureScenarios(t *testing.T) {
	scenarios, err := LoadDir("testdata")
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	var names []string
	for _, sc := range scenarios {
		names = append(names, sc.Name)
	}
	if diff := cmp.Diff([]string{"catalog-viewer", "strict-mtls"}, names); diff != "" {
		t.Fatalf("scenario names (-want +got):\n%s", diff)
	}

	cv := scenarios[0]
	if cv.Path != filepath.Join("testdata", "catalog-viewer.yaml") {
		t.Errorf("Path = %q", cv.Path)
	}
	wantDir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if cv.Dir != wantDir {
		t.Errorf("Dir = %q, want %q", cv.Dir, wantDir)
	}
	if got := cv.Apps["istioinaction/webapp"].Forward["/api/catalog"]; got != "http://catalog.istioinaction/items" {
		t.Errorf("webapp forward = %q", got)
	}
	jwt, err := os.ReadFile(filepath.Join("testdata", "../../../../shared/fixtures/ch9/enduser/user.jwt"))
	if err != nil {
		t.Fatal(err)
	}
	wantSteps := []Step{
		{
			Name:    "webapp may read catalog",
			Request: &Request{From: "istioinaction/webapp", URL: "http://catalog.istioinaction/items?limit=2", Method: "GET"},
			Expect:  &Expect{Status: 200},
		},
		{
			Name: "step-2",
			Request: &Request{
				From: "default/sleep", URL: "http://catalog.istioinaction/items", Method: "POST",
				Headers: map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(jwt))},
				Body:    `{"id": 2}`,
			},
			Expect: &Expect{Status: 403, BodyContains: "RBAC: access denied"},
		},
		{
			Name:            "step-3",
			PeerCertificate: &PeerCert{From: "istioinaction/webapp", To: "catalog.istioinaction:80"},
			Expect: &Expect{
				URISAN:           "spiffe://cluster.local/ns/istioinaction/sa/catalog",
				ChainsToMeshRoot: true,
				MaxValidity:      "24h",
			},
		},
	}
	if diff := cmp.Diff(wantSteps, cv.Steps); diff != "" {
		t.Errorf("catalog-viewer steps (-want +got):\n%s", diff)
	}
	if got := cv.Steps[2].Expect.MaxValidityDuration().Hours(); got != 24 {
		t.Errorf("MaxValidityDuration = %vh, want 24h", got)
	}

	// The fixture files resolve relative to the scenario and get their namespace.
	name, data, err := cv.Manifests[3].Read(cv.Dir)
	if err != nil {
		t.Fatalf("Read sleep manifest: %v", err)
	}
	if name != filepath.Join(wantDir, "../../../../shared/fixtures/ch9/sleep.yaml") {
		t.Errorf("manifest name = %q", name)
	}
	if n := strings.Count(string(data), "namespace: default\n"); n != 3 {
		t.Errorf("sleep manifest has namespace: default %d times, want 3 (ServiceAccount, Service, Deployment):\n%s", n, data)
	}

	sm := scenarios[1]
	var kinds []StepKind
	for _, st := range sm.Steps {
		kinds = append(kinds, st.Kind())
	}
	if diff := cmp.Diff([]StepKind{KindRequest, KindApply, KindRequest, KindDelete}, kinds); diff != "" {
		t.Errorf("strict-mtls step kinds (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]ObjectRef{{Kind: "PeerAuthentication", Namespace: "istio-system", Name: "default"}}, sm.Steps[3].Delete); diff != "" {
		t.Errorf("delete step (-want +got):\n%s", diff)
	}
	if r := sm.Steps[2].Request; r.HostHeader() != "webapp.istioinaction:80" || r.To != "istioinaction/webapp:8080" || !sm.Steps[2].Expect.ConnectionError {
		t.Errorf("plaintext step = %+v expect %+v", r, sm.Steps[2].Expect)
	}
}

func TestDefaults(t *testing.T) {
	sc := mustLoadText(t, `name: defaults
steps:
  - request: {from: outside, url: "http://a.b/"}
    expect: {status: 200}
  - name: named
    request: {from: outside, url: "http://a.b/", method: DELETE}
    expect: {status: 200}
  - request: {from: a/b, tcp: "c.d:9000"}
    expect: {echo: true}
`, nil)
	type got struct{ Name, Method string }
	var gots []got
	for _, st := range sc.Steps {
		gots = append(gots, got{st.Name, st.Request.Method})
	}
	want := []got{{"step-1", "GET"}, {"named", "DELETE"}, {"step-3", ""}}
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Errorf("names and methods (-want +got):\n%s", diff)
	}
}

func TestLoadDir(t *testing.T) {
	step := "\nsteps:\n  - request: {from: outside, url: \"http://a.b/\"}\n    expect: {status: 200}\n"
	dir := writeFiles(t, map[string]string{
		"b.yaml":       "name: second" + step,
		"a.yaml":       "name: first" + step,
		"c.yaml":       "name: first" + step,
		"d.yaml":       "name: broken\n",
		"notes.yml":    "not: a scenario",
		"README.md":    "# scenarios",
		"sub/e.yaml":   "name: nested" + step,
		"dir.yaml/x":   "a directory named like a scenario",
		"z-last.yaml":  "name: last" + step,
		"0-first.yaml": "name: zero" + step,
	})
	if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling.yaml")); err != nil {
		t.Fatal(err)
	}
	files, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	var bases []string
	for _, f := range files {
		bases = append(bases, filepath.Base(f))
	}
	if diff := cmp.Diff([]string{"0-first.yaml", "a.yaml", "b.yaml", "c.yaml", "d.yaml", "dangling.yaml", "z-last.yaml"}, bases); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}

	scenarios, err := LoadDir(dir)
	var names []string
	for _, sc := range scenarios {
		names = append(names, sc.Name)
	}
	if diff := cmp.Diff([]string{"zero", "first", "second", "last"}, names); diff != "" {
		t.Errorf("loaded scenarios (-want +got):\n%s", diff)
	}
	wantErr(t, err,
		filepath.Join(dir, "c.yaml")+`: name: "first" is also the name of `+filepath.Join(dir, "a.yaml"),
		filepath.Join(dir, "d.yaml")+": steps: at least one step is required",
		"read scenario: open "+filepath.Join(dir, "dangling.yaml"))
}

func TestLoadDirErrors(t *testing.T) {
	_, err := LoadDir(t.TempDir())
	wantErr(t, err, "no *.yaml scenario files in")
	_, err = LoadDir(filepath.Join(t.TempDir(), "missing"))
	wantErr(t, err, "list scenarios:", "no such file or directory")
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	wantErr(t, err, "read scenario:", "missing.yaml")
}
