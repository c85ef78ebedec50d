package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
)

// foundationMesh writes the workloads of the foundation test: a server and a client
// with sidecars in namespace demo, and a sidecar-less legacy pod.
func foundationManifests(serverIP, clientIP, vip string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: server, namespace: demo}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: client, namespace: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: server, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  template:
    metadata:
      labels: {app: server}
      annotations: {warden.io/pod-ip: "%s"}
    spec:
      serviceAccountName: server
      containers: [{name: app, image: echo, ports: [{containerPort: 8080, name: http}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: demo}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata:
      labels: {app: client}
      annotations: {warden.io/pod-ip: "%s"}
    spec:
      serviceAccountName: client
      containers: [{name: app, image: echo, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: demo}
spec:
  clusterIP: %s
  selector: {app: server}
  ports: [{name: http, port: 80, targetPort: 8080}]
`, serverIP, clientIP, vip)
}

func peerAuthn(mode string) string {
	return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: server, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  mtls: {mode: ` + mode + `}
`
}

// TestFoundationMTLS drives two stock Envoy sidecars (one SotW, one delta) against a
// running wardend --config-dir: STRICT refuses plaintext, the sidecar-to-sidecar call is
// mTLS with the caller's SPIFFE ID visible to the app, and switching the file to
// PERMISSIVE lets plaintext through without a restart.
// demo is the two-sidecar mesh the e2e tests share: server (delta xDS) and client
// (SotW) with sidecars in namespace demo, a sidecar-less sleep in namespace legacy, and
// Service server.demo; fail reports with wardend's and the Envoys' logs.
type demo struct {
	m                      *harness.Mesh
	server, client, legacy *harness.Pod
	fail                   func(format string, args ...any)
}

// startDemo starts wardend with files (name -> manifest) besides the workloads, and
// the three pods, and returns once both sidecars are SYNCED.
func startDemo(ctx context.Context, t *testing.T, opts harness.Options, files map[string]string) *demo {
	t.Helper()
	opts.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := harness.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	d := &demo{m: m}
	d.fail = func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n%s", append(args, m.Diagnose(ctx))...)
	}
	for name, content := range files {
		if err := m.WriteConfig(name, content); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.StartWardend(ctx); err != nil {
		t.Fatal(err)
	}
	if d.server, err = m.AddPod(ctx, harness.PodOptions{Namespace: "demo", Name: "server", ServiceAccount: "server",
		Labels: map[string]string{"app": "server"}, HTTPPorts: []uint32{8080}, Sidecar: true, Delta: true}); err != nil {
		d.fail("%v", err)
	}
	if d.client, err = m.AddPod(ctx, harness.PodOptions{Namespace: "demo", Name: "client", ServiceAccount: "client",
		Labels: map[string]string{"app": "client"}, HTTPPorts: []uint32{8080}, Sidecar: true}); err != nil {
		d.fail("%v", err)
	}
	if d.legacy, err = m.AddPod(ctx, harness.PodOptions{Namespace: "legacy", Name: "sleep", HTTPPorts: []uint32{8080}}); err != nil {
		d.fail("%v", err)
	}
	vip, err := m.Cluster.AllocServiceIP()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Cluster.SetHosts(d.client.Pod, map[string]string{"server.demo": vip, "server.demo.svc.cluster.local": vip}); err != nil {
		t.Fatal(err)
	}
	d.write("00-workloads.yaml", foundationManifests(d.server.IP(), d.client.IP(), vip))
	for _, p := range []*harness.Pod{d.server, d.client, d.legacy} {
		if err := m.WaitAppReady(ctx, p); err != nil {
			d.fail("%v", err)
		}
	}
	if _, err := m.WaitSynced(ctx, []string{"server.demo", "client.demo"}, 60*time.Second); err != nil {
		d.fail("%v", err)
	}
	return d
}

// write changes (or, with empty content, removes) one manifest file and waits until
// wardend serves the new configuration.
func (d *demo) write(name, content string) {
	ctx := context.Background()
	prev, err := d.m.InputVersion(ctx)
	if err != nil {
		d.fail("%v", err)
	}
	if content == "" {
		err = d.m.RemoveConfig(name)
	} else {
		err = d.m.WriteConfig(name, content)
	}
	if err != nil {
		d.fail("%v", err)
	}
	if err := d.m.WaitInputChange(ctx, prev, 20*time.Second); err != nil {
		d.fail("%v", err)
	}
}

// TestFoundationMTLS drives two stock Envoy sidecars (one SotW, one delta) against a
// running wardend --config-dir: STRICT refuses plaintext, the sidecar-to-sidecar call is
// mTLS with the caller's SPIFFE ID visible to the app, and switching the file to
// PERMISSIVE lets plaintext through without a restart.
func TestFoundationMTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d := startDemo(ctx, t, harness.Options{}, map[string]string{"10-strict.yaml": peerAuthn("STRICT")})
	m, server, client, legacy, fail := d.m, d.server, d.client, d.legacy, d.fail

	// STRICT: plaintext from a pod without a sidecar gets no HTTP response at all.
	r, err := m.Request(ctx, legacy, "GET", "http://"+server.IP()+":8080/plain", nil)
	if err != nil {
		fail("%v", err)
	}
	if !r.ConnectionError {
		fail("plaintext to STRICT server: want connection error, got %s %s", r, r.Body)
	}

	// Sidecar to sidecar: mTLS, and the app sees the caller's SPIFFE ID.
	r, err = m.Request(ctx, client, "GET", "http://server.demo/hello", nil)
	if err != nil {
		fail("%v", err)
	}
	if r.Status != 200 {
		fail("client -> server through sidecars: want 200, got %s %s", r, r.Body)
	}
	if !strings.Contains(r.Body, "URI=spiffe://cluster.local/ns/demo/sa/client") {
		fail("server app did not see the client's SPIFFE ID in x-forwarded-client-cert: %s", r.Body)
	}

	// PERMISSIVE, with no restart: plaintext gets through.
	d.write("10-strict.yaml", peerAuthn("PERMISSIVE"))
	took, err := m.WaitSynced(ctx, []string{"server.demo", "client.demo"}, 30*time.Second)
	if err != nil {
		fail("%v", err)
	}
	t.Logf("PERMISSIVE SYNCED after %v", took)
	r, err = m.Request(ctx, legacy, "GET", "http://"+server.IP()+":8080/plain", nil)
	if err != nil {
		fail("%v", err)
	}
	if r.Status != 200 {
		fail("plaintext to PERMISSIVE server: want 200, got %s %s", r, r.Body)
	}
	// And mTLS still works.
	r, err = m.Request(ctx, client, "GET", "http://server.demo/hello", nil)
	if err != nil {
		fail("%v", err)
	}
	if r.Status != 200 || !strings.Contains(r.Body, "URI=spiffe://cluster.local/ns/demo/sa/client") {
		fail("client -> server under PERMISSIVE: want 200 with client SPIFFE ID, got %s %s", r, r.Body)
	}
}
