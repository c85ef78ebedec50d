package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/internal/golden"
	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/watch"
	"github.com/wardenmesh/warden/xds"
)

// fakeWardend serves /debug/mtlsz and /debug/describe for testdata/mesh.yaml, as
// wardend would with web.demo's proxy connected and served a fixed certificate.
func fakeWardend(t *testing.T) string {
	t.Helper()
	return fakeWardendFor(t, "mesh.yaml")
}

// fakeWardendFor is fakeWardend for another mesh in testdata.
func fakeWardendFor(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	objs, diags := watch.DecodeFile("testdata/"+file, data)
	in := watch.Build(objs, diags)
	x := translate.NewIndex(in)
	write := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(v); err != nil {
			t.Error(err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/mtlsz", func(w http.ResponseWriter, r *http.Request) {
		ns := r.URL.Query().Get("namespace")
		resp := xds.MTLSzResponse{InputVersion: in.Version, Workloads: []translate.WorkloadMTLS{}}
		for _, row := range translate.MTLSView(x) {
			row.Connected = row.Name+"."+row.Namespace == "web.demo"
			if ns == "" || row.Namespace == ns {
				resp.Workloads = append(resp.Workloads, row)
			}
		}
		write(w, resp)
	})
	mux.HandleFunc("/debug/describe", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("pod")
		pod, ns, _ := strings.Cut(id, ".")
		d, err := translate.Describe(x, ns, pod)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if id == "web.demo" {
			d.Connected = true
			d.Certificate = &translate.Certificate{Serial: "5eed",
				NotBefore: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), NotAfter: time.Date(2026, 1, 3, 3, 4, 5, 0, time.UTC)}
		}
		write(w, d)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func runWardenctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestViewsGolden renders `wardenctl mtls` and `wardenctl describe` for the fixed
// mesh of testdata/mesh.yaml and compares with testdata/<name>.golden.
func TestViewsGolden(t *testing.T) {
	server := fakeWardend(t)
	cases := []struct {
		name string
		args []string
	}{
		{"mtls-all", []string{"mtls", "-A"}},
		{"mtls-demo-json", []string{"mtls", "-n", "demo", "-o", "json"}},
		{"mtls-default-empty", []string{"mtls"}},
		{"describe-web", []string{"describe", "web.demo"}},
		{"describe-legacy", []string{"describe", "legacy.demo"}},
		{"describe-gateway-yaml", []string{"describe", "istio-ingressgateway.istio-system", "-o", "yaml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := runWardenctl(t, append(c.args, "--server", server)...)
			if err != nil {
				t.Fatalf("wardenctl %s: %v", strings.Join(c.args, " "), err)
			}
			golden.Check(t, filepath.Join("testdata", c.name+".golden"), []byte(got))
		})
	}
	// Mesh DISABLE with a workload STRICT: describe notes the deliberate difference
	// from Istio, whose clients pick auto mTLS from the mesh and namespace modes only
	// (istio/istio pilot/pkg/model/push_context.go BestEffortInferServiceMTLSMode,
	// istio#56084) and would send plaintext.
	t.Run("describe-mesh-disable-workload-strict", func(t *testing.T) {
		got, err := runWardenctl(t, "describe", "web.demo", "--server", fakeWardendFor(t, "mesh-disable-workload-strict.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "note: deliberate difference from Istio") {
			t.Errorf("describe does not note the difference from Istio:\n%s", got)
		}
		golden.Check(t, filepath.Join("testdata", "describe-mesh-disable-workload-strict.golden"), []byte(got))
	})
	// Egress with DestinationRule TLS origination from credentialName: the SNI, the
	// Secret (always of the pod's namespace) and why a host is blocked.
	t.Run("describe-egress-credential", func(t *testing.T) {
		got, err := runWardenctl(t, "describe", "web.shop", "--server", fakeWardendFor(t, "egress-credential.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, filepath.Join("testdata", "describe-egress-credential.golden"), []byte(got))
	})
	// Issue 15: describe of a TLS gateway shows each server (port, hosts, TLS mode),
	// its certificate (source Secret, serial, expiry, SANs) and its routes, and never
	// key material, in any output format.
	t.Run("describe-gateway-tls", func(t *testing.T) {
		server := fakeWardendFor(t, "gateway-tls.yaml")
		got, err := runWardenctl(t, "describe", "istio-ingressgateway.istio-system", "--server", server)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"443 https-www", "serial 1501", "Secret istio-system/example-credential",
			"REFUSES CONNECTIONS: spec.servers[4].tls.credentialName", "route:       tls istioinaction/secure secure.example.com -> secure:8443"} {
			if !strings.Contains(got, want) {
				t.Errorf("describe does not show %q:\n%s", want, got)
			}
		}
		golden.Check(t, filepath.Join("testdata", "describe-gateway-tls.golden"), []byte(got))
		js, err := runWardenctl(t, "describe", "istio-ingressgateway.istio-system", "-o", "json", "--server", server)
		if err != nil {
			t.Fatal(err)
		}
		for _, out := range []string{got, js} {
			for _, secret := range []string{"PRIVATE KEY", "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0t", "keyPEM", "KeyPEM"} {
				if strings.Contains(out, secret) {
					t.Errorf("describe output contains key material (%q)", secret)
				}
			}
		}
	})
	golden.Prune(t, filepath.Join("testdata", "*.golden"))
}

func TestViewsErrors(t *testing.T) {
	server := fakeWardend(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"describe", "nope.demo", "--server", server}, "no workload nope.demo"},
		{[]string{"mtls", "-o", "xml", "--server", server}, "want table, json or yaml"},
		{[]string{"describe"}, "accepts 1 arg"},
		{[]string{"mtls", "--server", "127.0.0.1:1", "--timeout", "2s"}, "cannot reach wardend"},
	} {
		_, err := runWardenctl(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("wardenctl %s: error %v, want one containing %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}
