package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/xds"
)

// probeManifests is pod web.demo as the injector leaves it: its probes rewritten to
// 15020, the originals in warden.io/app-probers (readyz: httpGet with a Host and a
// header; startupz: an httpGet the app answers 500; livez: tcpSocket on the TCP port;
// and an entry for Envoy's admin port that must not be served),
// and pod rpc.demo whose gRPC app's health service answers its grpc probes (readyz and
// livez SERVING, startupz NOT_SERVING).
func probeManifests(ip, rpcIP string) string {
	rpcProbers := `{"/app-health/rpc/readyz":{"grpc":{"port":9090,"service":"warden.e2e.Serving"}},` +
		`"/app-health/rpc/livez":{"grpc":{"port":9090}},` +
		`"/app-health/rpc/startupz":{"grpc":{"port":9090,"service":"warden.e2e.NotServing"}}}`
	probers := `{"/app-health/app/readyz":{"httpGet":{"path":"/ready-check","port":8080,"host":"probe.example","httpHeaders":[{"name":"X-Probe","value":"kubelet"}]},"timeoutSeconds":2},` +
		`"/app-health/app/startupz":{"httpGet":{"path":"/broken","port":8080}},` +
		`"/app-health/app/livez":{"tcpSocket":{"port":9000}},` +
		// A bad entry: Envoy's admin port. Reported and not served.
		`"/app-health/admin/livez":{"httpGet":{"path":"/config_dump","port":15000}}}`
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: demo
  labels: {app: web}
  annotations:
    warden.io/pod-ip: "%s"
    warden.io/app-probers: '%s'
spec:
  containers:
  - name: app
    image: echo
    ports: [{containerPort: 8080, name: http}, {containerPort: 9000, name: tcp}]
---
apiVersion: v1
kind: Pod
metadata:
  name: rpc
  namespace: demo
  labels: {app: rpc}
  annotations:
    warden.io/pod-ip: "%s"
    warden.io/app-probers: '%s'
spec:
  containers:
  - name: rpc
    image: grpc
    ports: [{containerPort: 9090, name: grpc}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
`, ip, probers, rpcIP, rpcProbers)
}

// TestAppProbesUnderStrict: under mesh-wide STRICT mTLS, the kubelet's plaintext probes
// (sent from the host, outside the pod, as a kubelet sends them) reach the app through
// the sidecar's 0.0.0.0_15020 listener and get the app's own answer, while plaintext to
// the app port is refused; an undeclared path is 404; the tcpSocket probe follows the
// app's port (200 while it listens, 503 once the app is gone).
func TestAppProbesUnderStrict(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	m, err := harness.Start(ctx, harness.Options{Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n%s", append(args, m.Diagnose(ctx))...)
	}
	if err := m.StartWardend(ctx); err != nil {
		t.Fatal(err)
	}
	web, err := m.CreatePod(ctx, "demo", "web")
	if err != nil {
		t.Fatal(err)
	}
	rpc, err := m.CreatePod(ctx, "demo", "rpc")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WriteConfig("00-web.yaml", probeManifests(web.IP(), rpc.IP())); err != nil {
		t.Fatal(err)
	}
	if err := m.StartPod(ctx, web, harness.PodOptions{Labels: map[string]string{"app": "web"}, HTTPPorts: []uint32{8080}, TCPPorts: []uint32{9000},
		AppConfig: map[string]any{"forward": map[string]string{"/broken": "http://127.0.0.1:1/"}}, Sidecar: true}); err != nil {
		fail("%v", err)
	}
	if err := m.StartPod(ctx, rpc, harness.PodOptions{Labels: map[string]string{"app": "rpc"}, HTTPPorts: []uint32{9090},
		AppConfig: map[string]any{"extAuthzGrpc": true}, Sidecar: true}); err != nil {
		fail("%v", err)
	}
	for _, p := range []*harness.Pod{web, rpc} {
		if err := m.WaitAppReady(ctx, p); err != nil {
			fail("%v", err)
		}
	}
	if _, err := m.WaitSynced(ctx, []string{"rpc.demo", "web.demo"}, 60*time.Second); err != nil {
		fail("%v", err)
	}

	// The kubelet: a plain HTTP client in the host's network namespace.
	kubelet := &http.Client{Timeout: 5 * time.Second}
	probeOf := func(p *harness.Pod, path string) (int, string, error) {
		resp, err := kubelet.Get("http://" + p.IP() + ":15020" + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	probe := func(path string) (int, string, error) { return probeOf(web, path) }
	// waitProbeOf polls p's path until its status satisfies ok and returns the last body.
	waitProbeOf := func(p *harness.Pod, path, want string, ok func(int) bool) string {
		t.Helper()
		var status int
		var body string
		var perr error
		if err := waitUntil(ctx, 30*time.Second, func() error {
			status, body, perr = probeOf(p, path)
			if perr != nil || !ok(status) {
				return fmt.Errorf("GET %s: %d %q %v", path, status, body, perr)
			}
			return nil
		}); err != nil {
			fail("%s %s: want %s: %v", p.ID(), path, want, err)
		}
		return body
	}
	waitProbe := func(path, want string, ok func(int) bool) string {
		t.Helper()
		return waitProbeOf(web, path, want, ok)
	}

	// readyz: the app's echo handler answered the original probe: its path, its Host,
	// its header.
	body := waitProbe("/app-health/app/readyz", "200 from the app", func(s int) bool { return s == 200 })
	var echo struct {
		Path    string            `json:"path"`
		Host    string            `json:"host"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(body), &echo); err != nil {
		fail("readyz body is not the echo app's: %q: %v", body, err)
	}
	if echo.Path != "/ready-check" || echo.Host != "probe.example:8080" || echo.Headers["x-probe"] != "kubelet" {
		fail("readyz reached the app as path %q host %q x-probe %q; want /ready-check, probe.example:8080, kubelet (%s)",
			echo.Path, echo.Host, echo.Headers["x-probe"], body)
	}

	// startupz: the app's own failure (500 and its body) comes back as it is.
	status, body, err := probe("/app-health/app/startupz")
	if err != nil || status != 500 || !strings.Contains(body, "error calling http://127.0.0.1:1/") {
		fail("startupz: want the app's 500 naming its upstream, got %d %q %v", status, body, err)
	}

	// Paths nobody declared are 404, a container the pod does not have included.
	for _, path := range []string{"/app-health/app/other", "/app-health/db/readyz", "/ready-check", "/stats"} {
		if status, body, err := probe(path); err != nil || status != 404 {
			fail("GET %s on 15020: want 404, got %d %q %v", path, status, body, err)
		}
	}

	// The entry for Envoy's admin port is not served, and is reported on the Pod's annotation.
	if status, body, err := probe("/app-health/admin/livez"); err != nil || status != 404 {
		fail("the prober of Envoy's admin port: want 404, got %d %q %v", status, body, err)
	}
	if err := waitUntil(ctx, 30*time.Second, func() error {
		res, err := http.Get("http://" + m.DebugAddr + "/debug/syncz")
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var r xds.SynczResponse
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			return err
		}
		for _, d := range r.Diagnostics {
			if d.Kind == "Pod" && d.Namespace == "demo" && d.Name == "web" && d.Severity == "warning" &&
				d.Field == "metadata.annotations[warden.io/app-probers]" && strings.Contains(d.Message, "/app-health/admin/livez") {
				return nil
			}
		}
		return fmt.Errorf("no warning on Pod demo/web's app-probers annotation: %+v", r.Diagnostics)
	}); err != nil {
		fail("%v", err)
	}

	// STRICT still holds on the app port: plaintext from the same host is refused.
	if resp, err := kubelet.Get("http://" + web.IP() + ":8080/ready-check"); err == nil {
		resp.Body.Close()
		fail("plaintext to the app port under STRICT: want a connection error, got %d", resp.StatusCode)
	}

	// livez (tcpSocket): 200 while the app's port 9000 listens...
	waitProbe("/app-health/app/livez", "200 while the app listens", func(s int) bool { return s == 200 })
	// ...and not 200 once the app is gone (the sidecar keeps running).
	if err := web.App.Stop(); err != nil {
		t.Logf("stop app: %v", err)
	}
	waitProbe("/app-health/app/livez", "non-200 once the app stopped", func(s int) bool { return s != 0 && s != 200 })
	if status, body, err := probe("/app-health/app/readyz"); err != nil || status == 200 {
		fail("readyz after the app stopped: want a non-200 answer from the sidecar, got %d %q %v", status, body, err)
	}

	// grpc: the app's health service decides, per service name.
	is200 := func(s int) bool { return s == 200 }
	waitProbeOf(rpc, "/app-health/rpc/readyz", "200 (service SERVING)", is200)
	waitProbeOf(rpc, "/app-health/rpc/livez", "200 (server SERVING)", is200)
	waitProbeOf(rpc, "/app-health/rpc/startupz", "503 (service NOT_SERVING)", func(s int) bool { return s == 503 })
	if err := rpc.App.Stop(); err != nil {
		t.Logf("stop rpc app: %v", err)
	}
	waitProbeOf(rpc, "/app-health/rpc/readyz", "503 once the gRPC app stopped", func(s int) bool { return s == 503 })
}
