package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/watch"
	"github.com/wardenmesh/warden/xds"
)

// The mesh of TestBadInputOnRunningMesh: STRICT mesh-wide (root namespace istio-system)
// and a DENY of /admin on the server.
const (
	meshFile  = "10-mesh.yaml"
	authzFile = "20-authz.yaml"
	meshPA    = `apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
`
	denyAdmin = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  action: DENY
  rules: [{to: [{operation: {paths: [/admin]}}]}]
`
)

func rootPA(name, mode string) string {
	return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " + name +
		", namespace: istio-system}\nspec:\n  mtls: {mode: " + mode + "}\n"
}

// badInputClass is one class of the catalogue (watch/badinput_test.go) written over the
// running mesh: file gets content (inPlace: truncated and rewritten where it is, as a
// non-atomic writer does; else a new file renamed into place), want is a substring of
// the diagnostic wardend must then report, and failClosed says the class is a new policy
// Warden cannot translate, so its workloads deny everything instead of keeping their
// configuration.
type badInputClass struct {
	name, file, content string
	inPlace             bool
	want                string
	failClosed          bool
}

var runningMeshClasses = []badInputClass{
	// An editor that rewrites in place, caught mid-write: the kind is cut off.
	{name: "truncated-rewrite-cut-off-kind", file: meshFile, inPlace: true,
		content: meshPA[:strings.Index(meshPA, "kind: PeerAuthentication")+len("kind: Peer")],
		want:    "unknown kind Peer in security.istio.io/v1 (a cut-off PeerAuthentication?)"},
	// Caught later: the flow mapping is not closed.
	{name: "truncated-rewrite-invalid-yaml", file: meshFile, inPlace: true,
		content: meshPA[:strings.Index(meshPA, "STRICT")+3], want: "invalid YAML"},
	// Caught just after the truncation.
	{name: "truncated-rewrite-empty", file: meshFile, inPlace: true, content: "", want: "empty file (being written?)"},
	{name: "unknown-field", file: meshFile,
		content: strings.Replace(meshPA, "mode: STRICT", "mood: STRICT", 1), want: "serving the last good version"},
	{name: "unknown-enum-in-policy", file: authzFile,
		content: strings.Replace(denyAdmin, "action: DENY", "action: DENYY", 1), want: "serving the last good version"},
	// A rejected root PeerAuthentication fails the mesh closed as STRICT (already so here).
	{name: "typo-mode-new-root-peerauthentication", file: "30-typo.yaml",
		content: rootPA("typo", "STRIKT"), want: "PeerAuthentication istio-system/typo: spec.mtls.mode"},
	// Sorts before the established istio-system/default and defines it as PERMISSIVE.
	{name: "duplicate-in-new-file", file: "05-dup.yaml", content: rootPA("default", "PERMISSIVE"),
		want: "PeerAuthentication istio-system/default: already defined at "},
	{name: "non-utf8", file: authzFile, content: strings.Replace(denyAdmin, "/admin", "/admin\xff", 1),
		want: "UTF-8"},
	{name: "alias-bomb", file: "40-bomb.yaml",
		content: "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
			"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n" +
			"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n",
		want: "excessive aliasing"},
	{name: "oversized-object", file: "50-big.yaml",
		content: strings.Replace(rootPA("big", "PERMISSIVE"), "istio-system", "demo", 1) + "# " + strings.Repeat("x", watch.MaxObjectBytes) + "\n",
		want:    "over the 1572864-byte object limit"},
	// Translation, not decoding, finds it: the server denies every request.
	{name: "bad-cidr", file: "60-cidr.yaml", failClosed: true,
		content: strings.Replace(strings.Replace(denyAdmin, "deny-admin", "bad-cidr", 1), "action: DENY\n  rules: [{to: [{operation: {paths: [/admin]}}]}]",
			"rules: [{from: [{source: {ipBlocks: [\"10.0.0.0/33\"]}}]}]", 1),
		want: `invalid CIDR "10.0.0.0/33": the workloads it selects deny every request (fail closed)`},
}

// TestBadInputOnRunningMesh applies classes of the bad-input catalogue to a running mesh
// in directory mode (wardend, two stock Envoy sidecars, a sidecar-less pod) and after each
// checks that wardend reports it, that both Envoys' dynamic listeners, routes and clusters
// are byte-for-byte what they were (version_info and last_updated aside), that plaintext
// from the sidecar-less pod is still refused (mesh-wide STRICT) and that the mTLS request
// the DENY policy matches is still 403. Then every file is restored, the configuration
// is the original again, and an edit of the restored file serves at once.
//
// Istio references: a typo'd, wrong-typed or unknown-field object is refused by the
// validating webhook (pkg/config/validation), so the cluster keeps its last accepted
// version; an AuthorizationPolicy Istio's builder cannot translate makes its workloads
// deny (pilot/pkg/security/authz/builder, "fail closed"); PeerAuthentication STRICT
// refuses plaintext (pilot/pkg/security/authn, the inbound listener without a plaintext
// chain).
func TestBadInputOnRunningMesh(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	d := startDemo(ctx, t, harness.Options{}, map[string]string{meshFile: meshPA, authzFile: denyAdmin})
	m, server, client, legacy, fail := d.m, d.server, d.client, d.legacy, d.fail
	both := []string{"server.demo", "client.demo"}

	problems := func() []xds.ConfigProblem {
		res, err := http.Get("http://" + m.DebugAddr + "/debug/syncz")
		if err != nil {
			fail("%v", err)
		}
		defer res.Body.Close()
		var r xds.SynczResponse
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			fail("syncz: %v", err)
		}
		return r.Diagnostics
	}
	dumps := func() map[string]string {
		out := map[string]string{}
		for _, p := range []*harness.Pod{server, client} {
			out[p.ID()] = securityDump(t, ctx, m, p)
		}
		return out
	}
	// requests are the three checks of every step; allowHello is whether the server
	// still answers what the DENY policy does not match.
	requests := func(what string, allowHello bool) {
		r, err := m.Request(ctx, legacy, "GET", "http://"+server.IP()+":8080/plain", nil)
		if err != nil {
			fail("%v", err)
		}
		if !r.ConnectionError {
			fail("%s: plaintext from a sidecar-less pod: want connection refused (STRICT), got %s %s", what, r, r.Body)
		}
		r, err = m.Request(ctx, client, "GET", "http://server.demo/admin", nil)
		if err != nil {
			fail("%v", err)
		}
		if r.Status != 403 {
			fail("%s: mTLS request to /admin the DENY policy matches: want 403, got %s %s", what, r, r.Body)
		}
		r, err = m.Request(ctx, client, "GET", "http://server.demo/hello", nil)
		if err != nil {
			fail("%v", err)
		}
		if want := map[bool]int{true: 200, false: 403}[allowHello]; r.Status != want {
			fail("%s: mTLS request to /hello: want %d, got %s %s", what, want, r, r.Body)
		}
	}
	await := func(what string, f func() error) {
		if err := waitUntil(ctx, 20*time.Second, f); err != nil {
			fail("waiting for %s: %v", what, err)
		}
	}
	// waitSynced waits for both Envoys to ACK what wardend intends and for connections
	// of replaced filter chains to drain (until then they keep the old RBAC).
	waitSynced := func(what string) {
		if _, err := m.WaitSynced(ctx, both, 20*time.Second); err != nil {
			fail("%s: %v", what, err)
		}
		if err := m.WaitDrained(ctx, 20*time.Second); err != nil {
			fail("%s: %v", what, err)
		}
	}

	// The base mesh has one warning, on the DENY policy's paths for the server's TCP
	// filter chains (an HTTP-only field ignored there, as in Istio); no error.
	problemSet := func() string {
		var out []string
		for _, p := range problems() {
			out = append(out, p.String())
		}
		return strings.Join(out, "\n")
	}
	baseProblems := problemSet()
	for _, p := range problems() {
		if p.IsError() {
			fail("the base mesh has an error: %s", p)
		}
	}
	// The base is taken once every replaced listener has drained: a listener still
	// draining from the mesh's start shows in config_dump and would differ later.
	waitSynced("base mesh")
	base := dumps()
	requests("base mesh", true)
	t.Logf("base mesh up after %s", time.Since(start).Round(time.Millisecond))

	originals := map[string]string{meshFile: meshPA, authzFile: denyAdmin}
	for _, c := range runningMeshClasses {
		stepStart := time.Now()
		prev, err := m.InputVersion(ctx)
		if err != nil {
			fail("%v", err)
		}
		if c.inPlace {
			err = os.WriteFile(filepath.Join(m.ConfigDir, c.file), []byte(c.content), 0o644)
		} else {
			err = m.WriteConfig(c.file, c.content)
		}
		if err != nil {
			fail("%v", err)
		}
		var got xds.ConfigProblem
		await(c.name+": wardend to report "+c.want, func() error {
			for _, p := range problems() {
				if strings.Contains(p.String(), c.want) && strings.Contains(p.Source.File, c.file) {
					got = p
					return nil
				}
			}
			return fmt.Errorf("problems: %v", problems())
		})
		now, err := m.InputVersion(ctx)
		if err != nil {
			fail("%v", err)
		}
		waitSynced(c.name)
		after := dumps()
		for id, b := range base {
			if c.failClosed && id == server.ID() {
				if after[id] == b {
					fail("%s: the server's configuration did not change: the untranslatable policy must make it deny", c.name)
				}
				continue
			}
			if after[id] != b {
				fail("%s: %s's listeners, routes or clusters changed:\n%s", c.name, id, firstDiff(b, after[id]))
			}
		}
		requests(c.name, !c.failClosed)
		t.Logf("%-38s input %s -> %s, %s: %s (%s)", c.name, short(prev), short(now), strings.ToUpper(got.Severity), got.String(),
			time.Since(stepStart).Round(time.Millisecond))

		// Restore: the original content, or no file.
		if orig, ok := originals[c.file]; ok {
			err = m.WriteConfig(c.file, orig)
		} else {
			err = m.RemoveConfig(c.file)
		}
		if err != nil {
			fail("%v", err)
		}
		await(c.name+": the problem to go once restored", func() error {
			if ps := problemSet(); ps != baseProblems {
				return fmt.Errorf("problems:\n%s", ps)
			}
			return nil
		})
		waitSynced(c.name + " restored")
		for id, b := range base {
			if a := securityDump(t, ctx, m, m.Pod(id)); a != b {
				fail("%s restored: %s's configuration is not the original:\n%s", c.name, id, firstDiff(b, a))
			}
		}
	}
	requests("all restored", true)

	// The restored files serve normally: an edit of each takes effect at once.
	d.write(meshFile, strings.Replace(meshPA, "STRICT", "PERMISSIVE", 1))
	d.write(authzFile, strings.Replace(denyAdmin, "/admin", "/hello", 1))
	waitSynced("edits after restore")
	// PERMISSIVE lets plaintext in, and /admin is no longer denied; /hello is.
	r, err := m.Request(ctx, legacy, "GET", "http://"+server.IP()+":8080/admin", nil)
	if err != nil {
		fail("%v", err)
	}
	if r.Status != 200 {
		fail("PERMISSIVE after restore: plaintext to /admin: want 200, got %s %s", r, r.Body)
	}
	r, err = m.Request(ctx, client, "GET", "http://server.demo/hello", nil)
	if err != nil {
		fail("%v", err)
	}
	if r.Status != 403 {
		fail("DENY of /hello after restore: want 403, got %s %s", r, r.Body)
	}
	t.Logf("whole test: %s", time.Since(start).Round(time.Millisecond))
}

// securityDump is the proxy's dynamic listeners, routes and clusters from its admin
// config_dump, with version_info and last_updated removed and keys sorted, one JSON
// document per resource type.
func securityDump(t *testing.T, ctx context.Context, m *harness.Mesh, p *harness.Pod) string {
	t.Helper()
	var b strings.Builder
	for _, res := range []string{"dynamic_listeners", "dynamic_route_configs", "dynamic_active_clusters"} {
		out, err := p.Exec(ctx, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:15000/config_dump?resource="+res)
		if err != nil {
			t.Fatalf("config_dump of %s: %v: %s", p.ID(), err, out)
		}
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("config_dump of %s: %v", p.ID(), err)
		}
		v = stripVersions(v)
		enc, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(enc, []byte("@type")) {
			t.Fatalf("config_dump of %s has no %s", p.ID(), res)
		}
		b.Write(enc)
		b.WriteByte('\n')
	}
	return b.String()
}

func stripVersions(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "version_info" || k == "last_updated" {
				delete(x, k)
				continue
			}
			x[k] = stripVersions(e)
		}
	case []any:
		for i, e := range x {
			x[i] = stripVersions(e)
		}
	}
	return v
}

// firstDiff shows the first differing lines of two dumps.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			lo := max(0, i-3)
			return fmt.Sprintf("line %d:\n  before: %s\n  after:  %s\n  context: %s", i, x, y,
				strings.Join(bl[lo:min(len(bl), i+3)], "\n  "))
		}
	}
	return "(same)"
}

func short(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}
