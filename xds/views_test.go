package xds

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/wardenmesh/warden/translate"
)

func getJSON(t *testing.T, h http.Handler, url string, into any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), into); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, rec.Body)
		}
	}
	return rec.Code
}

func TestViewsShowConnectedProxiesAndServedCertificate(t *testing.T) {
	ts := startServer(t)
	ts.srv.SetInput(meshtest.Input(t, meshtest.Shop))
	mux := http.NewServeMux()
	ts.srv.registerViews(mux)

	web := Identity{Namespace: "shop", ServiceAccount: "web", Pod: "web-0"}
	st := ts.stream(t, ts.token(t, web), web)
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var served *x509.Certificate
	for _, r := range resp.GetResources() {
		var s tlsv3.Secret
		if err := r.UnmarshalTo(&s); err != nil {
			t.Fatal(err)
		}
		if s.GetName() == translate.SecretDefault {
			block, _ := pem.Decode(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
			if served, err = x509.ParseCertificate(block.Bytes); err != nil {
				t.Fatal(err)
			}
		}
	}
	if served == nil {
		t.Fatal("no workload certificate served")
	}

	var mtlsz MTLSzResponse
	if code := getJSON(t, mux, "/debug/mtlsz?namespace=shop", &mtlsz); code != http.StatusOK {
		t.Fatalf("/debug/mtlsz: status %d", code)
	}
	type row struct {
		id, proxy, mode, policy string
		connected               bool
	}
	var got []row
	for _, w := range mtlsz.Workloads {
		got = append(got, row{w.Name + "." + w.Namespace, w.Proxy, w.Mode, w.Policy, w.Connected})
	}
	want := []row{
		{"db-0.shop", translate.ProxySidecar, "STRICT", "shop/default", false},
		{"web-0.shop", translate.ProxySidecar, "STRICT", "shop/default", true},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(row{})); diff != "" {
		t.Errorf("/debug/mtlsz?namespace=shop (-want +got):\n%s", diff)
	}
	if code := getJSON(t, mux, "/debug/mtlsz", &mtlsz); code != http.StatusOK || len(mtlsz.Workloads) != 3 {
		t.Errorf("/debug/mtlsz: status %d, %d workloads, want every namespace's 3", code, len(mtlsz.Workloads))
	}

	var d translate.WorkloadDescription
	if code := getJSON(t, mux, "/debug/describe?pod=web-0.shop", &d); code != http.StatusOK {
		t.Fatalf("/debug/describe: status %d", code)
	}
	if !d.Connected || d.Certificate == nil {
		t.Fatalf("describe web-0.shop: want connected with a certificate, got %+v", d)
	}
	if d.Certificate.Serial != served.SerialNumber.Text(16) || !d.Certificate.NotAfter.Equal(served.NotAfter) {
		t.Errorf("describe certificate %+v, want the served one (serial %s, expiry %s)", d.Certificate,
			served.SerialNumber.Text(16), served.NotAfter)
	}
	if d.SPIFFEID != "spiffe://cluster.local/ns/shop/sa/web" || d.MTLS.Mode != "STRICT" {
		t.Errorf("describe web-0.shop: got identity %s mode %s", d.SPIFFEID, d.MTLS.Mode)
	}
	var db translate.WorkloadDescription
	if code := getJSON(t, mux, "/debug/describe?pod=db-0.shop", &db); code != http.StatusOK || db.Connected || db.Certificate != nil {
		t.Errorf("describe db-0.shop: status %d, connected %v, certificate %v; want 200, not connected, none", code, db.Connected, db.Certificate)
	}
	if code := getJSON(t, mux, "/debug/describe?pod=nope.shop", &db); code != http.StatusNotFound {
		t.Errorf("describe of an unknown pod: status %d, want 404", code)
	}
}

func TestViewsBeforeFirstInput(t *testing.T) {
	s := New(Options{})
	mux := http.NewServeMux()
	s.registerViews(mux)
	var v MTLSzResponse
	if code := getJSON(t, mux, "/debug/mtlsz", &v); code != http.StatusServiceUnavailable {
		t.Errorf("/debug/mtlsz before any input: status %d, want 503", code)
	}
}
