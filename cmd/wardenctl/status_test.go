package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/watch"
	"github.com/wardenmesh/warden/xds"
)

func replica(t *testing.T, name string, proxies ...xds.ProxyStatus) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/syncz" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(xds.SynczResponse{Wardend: name, Proxies: proxies})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func proxyOn(pod, replica string, at time.Time, status string) xds.ProxyStatus {
	types := map[string]xds.TypeStatus{}
	for _, typ := range xds.ShortTypes {
		types[typ] = xds.TypeStatus{Status: status}
	}
	return xds.ProxyStatus{Name: pod, Namespace: "shop", ID: pod + ".shop", Wardend: replica, ConnectedAt: at,
		EnvoyVersion: "1.40.0", Types: types}
}

// TestStatusShowsEachProxyOnceAcrossReplicas: a proxy that moved from replica a to b
// (a still remembers a stale row for it) is shown once, from b.
func TestStatusShowsEachProxyOnceAcrossReplicas(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	a := replica(t, "wardend-a", proxyOn("web-0", "wardend-a", t0, xds.StatusStale), proxyOn("db-0", "wardend-a", t0, xds.StatusSynced))
	b := replica(t, "wardend-b", proxyOn("web-0", "wardend-b", t0.Add(time.Minute), xds.StatusSynced))
	var out bytes.Buffer
	cmd := newRoot()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"status", "--server", a + "," + b, "-o", "json", "--fail-unsynced"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("status: %v\n%s", err, out.String())
	}
	var rows []statusRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2 (one per proxy): %s", len(rows), out.String())
	}
	for _, r := range rows {
		if r.Name == "web-0" && (r.Wardend != "wardend-b" || !r.Synced) {
			t.Errorf("web-0 shown from %s (synced %v), want its current replica wardend-b", r.Wardend, r.Synced)
		}
	}

	// --fail-unsynced fails, with exit code 3, when a proxy is not SYNCED.
	c := replica(t, "wardend-c", proxyOn("api-0", "wardend-c", t0, xds.StatusStale))
	cmd = newRoot()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"status", "--server", c, "--fail-unsynced"})
	err := cmd.Execute()
	if exitCode(err) != 3 || !strings.Contains(err.Error(), "api-0.shop") {
		t.Fatalf("got %v (exit %d), want exit 3 naming api-0.shop", err, exitCode(err))
	}
}

func replicaWithProblems(t *testing.T, name string, probs ...xds.ConfigProblem) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(xds.SynczResponse{Wardend: name, Diagnostics: probs})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// wardenctl status ends with a summary line of the configuration problems and, per
// problem, the proxies it affects, merged across replicas (issue 12 item 5).
func TestStatusShowsProblemsWithProxies(t *testing.T) {
	cidr := watch.Diagnostic{Severity: watch.SeverityError, Source: watch.Location{File: "m/ap.yaml", Doc: 0},
		Kind: "AuthorizationPolicy", Namespace: "shop", Name: "bad-cidr", Field: "spec.rules[0].from[0].source.ipBlocks[0]",
		Message: `invalid CIDR "10.0.0.0/33": the workloads it selects deny every request (fail closed)`}
	typo := watch.Diagnostic{Severity: watch.SeverityWarning, Source: watch.Location{File: "m/x.yaml", Doc: 1},
		Kind: "Sidecar", Namespace: "shop", Name: "se", Message: "unknown kind Sidecar (networking.istio.io/v1), skipped"}
	a := replicaWithProblems(t, "a", xds.ConfigProblem{Diagnostic: cidr, Proxies: []string{"web-0.shop"}}, xds.ConfigProblem{Diagnostic: typo})
	b := replicaWithProblems(t, "b", xds.ConfigProblem{Diagnostic: cidr, Proxies: []string{"web-1.shop"}}, xds.ConfigProblem{Diagnostic: typo})
	var out bytes.Buffer
	cmd := newRoot()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"status", "--server", a + "," + b})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := "2 configuration problem(s): 1 error(s), 1 warning(s), 2 proxy(ies) affected; see `wardenctl analyze` or wardend's log:\n" +
		"  ERROR: " + cidr.String() + "\n    proxies: web-0.shop, web-1.shop\n" +
		"  WARNING: " + typo.String() + "\n"
	if !strings.HasSuffix(out.String(), want) {
		t.Errorf("status output:\n%s\nwant it to end with:\n%s", out.String(), want)
	}
}

// TestStatusReportsUnreachableReplica: a replica that does not answer is one ERROR
// line; the proxies of the others are still shown, once each with the replica serving
// them, and the exit code says a replica is missing.
func TestStatusReportsUnreachableReplica(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	a := replica(t, "wardend-a", proxyOn("web-0", "wardend-a", t0, xds.StatusSynced))
	b := replica(t, "wardend-b", proxyOn("db-0", "wardend-b", t0, xds.StatusSynced))
	dead := loopbackDead(t)
	for _, args := range [][]string{
		{"--server", a + "," + dead + "," + b},
		{"--server", a, "--server", dead, "--server", b}, // the flag repeated
	} {
		var out, errOut bytes.Buffer
		cmd := newRoot()
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		cmd.SetArgs(append([]string{"status"}, args...))
		err := cmd.Execute()
		if exitCode(err) != 4 {
			t.Fatalf("%v: got %v (exit %d), want exit 4\n%s", args, err, exitCode(err), out.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		var rows, errLines []string
		for _, l := range lines {
			switch {
			case strings.HasPrefix(l, "web-0.shop"), strings.HasPrefix(l, "db-0.shop"):
				rows = append(rows, l)
			case strings.HasPrefix(l, "ERROR: "):
				errLines = append(errLines, l)
			}
		}
		if len(rows) != 2 || !strings.Contains(out.String(), "wardend-a") || !strings.Contains(out.String(), "wardend-b") {
			t.Errorf("%v: want web-0 and db-0 once each with their replica:\n%s", args, out.String())
		}
		if len(errLines) != 1 || !strings.Contains(errLines[0], "wardend at "+dead) {
			t.Errorf("%v: want one ERROR line naming %s:\n%s", args, dead, out.String())
		}
	}

	// -o json: the document holds the reachable replicas' proxies, the error goes to stderr.
	var out, errOut bytes.Buffer
	cmd := newRoot()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"status", "--server", dead + "," + a, "-o", "json"})
	if err := cmd.Execute(); exitCode(err) != 4 {
		t.Fatalf("-o json: got %v, want exit 4", err)
	}
	var rows []statusRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil || len(rows) != 1 || rows[0].Wardend != "wardend-a" {
		t.Fatalf("-o json: %v %+v\n%s", err, rows, out.String())
	}
	if !strings.Contains(errOut.String(), "ERROR: wardend at "+dead) {
		t.Fatalf("-o json: stderr %q, want the unreachable replica", errOut.String())
	}

	// Every replica down: an error, nothing to show.
	cmd = newRoot()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"status", "--server", dead})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), dead) {
		t.Fatalf("all replicas down: got %v", err)
	}
}

// loopbackDead is a loopback address nothing listens on.
func loopbackDead(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	return addr
}
