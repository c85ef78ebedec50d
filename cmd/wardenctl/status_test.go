package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
