package xds

import (
	"bytes"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenmesh/warden/internal/meshtest"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const problemsPolicies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad-cidr, namespace: shop}
spec:
  rules:
  - from:
    - source: {ipBlocks: ["10.0.0.0/33"]}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: typo, namespace: other}
spec: {mtls: {mode: STRICTT}}
`

// Every diagnostic, from decoding and from translation, is logged once per input (not
// at every push), counted in warden_config_errors by kind and severity, and listed in
// /debug/syncz with the proxies it affects (issue 12 item 5). The translation
// diagnostic is translate's fail-closed report for an invalid CIDR (golden
// authz-invalid-fails-closed); Istio's analyzers report the same per object
// (istioctl analyze, galley/pkg/config/analysis).
func TestProblemsLoggedOnceCountedAndShown(t *testing.T) {
	logs := &lockedBuffer{}
	var reported [][]ConfigProblem
	var mu sync.Mutex
	ts := startServer(t, func(o *Options) {
		o.Log = slog.New(slog.NewTextHandler(logs, nil))
		o.OnProblems = func(ps []ConfigProblem) { mu.Lock(); reported = append(reported, ps); mu.Unlock() }
	})
	ts.srv.SetInput(meshtest.InputAllowingErrors(t, meshtest.Shop, problemsPolicies))

	web := Identity{Namespace: "shop", ServiceAccount: "web", Pod: "web-0"}
	st := ts.stream(t, ts.token(t, web), web)
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	const cidr = `spec.rules[0].from[0].source.ipBlocks[0]`
	var probs []ConfigProblem
	deadline := time.Now().Add(10 * time.Second)
	for {
		probs = ts.srv.Problems()
		if len(probs) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(probs) != 2 {
		t.Fatalf("problems = %+v, want the decoding and the translation diagnostic", probs)
	}
	byField := map[string]ConfigProblem{}
	for _, p := range probs {
		byField[p.Field] = p
	}
	if p := byField[cidr]; p.Name != "bad-cidr" || strings.Join(p.Proxies, ",") != "web-0.shop" || !p.IsError() {
		t.Errorf("translation problem = %+v, want bad-cidr affecting web-0.shop", p)
	}
	if p := byField["spec.mtls.mode"]; p.Name != "typo" || len(p.Proxies) != 0 {
		t.Errorf("decoding problem = %+v", p)
	}

	// More pushes of the same input log nothing again.
	// Each Refresh is waited for: the push loop logs "configuration evaluated" once per
	// evaluation of the connected proxy.
	for i := 0; i < 3; i++ {
		before := strings.Count(logs.String(), "configuration evaluated")
		ts.srv.Refresh()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(logs.String(), "configuration evaluated") == before {
			if time.Now().After(deadline) {
				t.Fatalf("refresh %d was not evaluated within 10s", i)
			}
			runtime.Gosched()
		}
	}
	for _, needle := range []string{"10.0.0.0/33", "STRICTT"} {
		if n := strings.Count(logs.String(), needle); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", needle, n, logs)
		}
	}
	if !strings.Contains(logs.String(), "proxies=[web-0.shop]") || !strings.Contains(logs.String(), "field="+cidr) {
		t.Errorf("translation problem logged without field or proxies:\n%s", logs)
	}

	m := ts.srv.opts.Metrics.ConfigErrors
	if got := gaugeValue(m.WithLabelValues("AuthorizationPolicy", "error")); got != 1 {
		t.Errorf("warden_config_errors{kind=AuthorizationPolicy,severity=error} = %v", got)
	}
	if got := gaugeValue(m.WithLabelValues("PeerAuthentication", "error")); got != 1 {
		t.Errorf("warden_config_errors{kind=PeerAuthentication,severity=error} = %v", got)
	}

	var syncz SynczResponse
	if code := getJSON(t, ts.srv.DebugHandler(), "/debug/syncz", &syncz); code != http.StatusOK {
		t.Fatalf("/debug/syncz: %d", code)
	}
	if len(syncz.Diagnostics) != 2 {
		t.Errorf("/debug/syncz diagnostics = %+v", syncz.Diagnostics)
	}
	for _, d := range syncz.Diagnostics {
		if d.Field == cidr && strings.Join(d.Proxies, ",") != "web-0.shop" {
			t.Errorf("/debug/syncz: %+v lacks its proxy", d)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) == 0 || len(reported[len(reported)-1]) != 2 {
		t.Errorf("OnProblems got %v", reported)
	}
}

func TestMetricKindIsBounded(t *testing.T) {
	for in, want := range map[string]string{"PeerAuthentication": "PeerAuthentication", "Translation": "Translation", "": "file", "Peer": "other", "x\x00y": "other"} {
		if got := metricKind(in); got != want {
			t.Errorf("metricKind(%q) = %q, want %q", in, got, want)
		}
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	return m.GetGauge().GetValue()
}
