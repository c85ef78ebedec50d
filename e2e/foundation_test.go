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
func TestFoundationMTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := harness.Start(ctx, harness.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n%s", append(args, m.Diagnose(ctx))...)
	}
	if err := m.WriteConfig("10-strict.yaml", peerAuthn("STRICT")); err != nil {
		t.Fatal(err)
	}
	if err := m.StartWardend(ctx); err != nil {
		t.Fatal(err)
	}
	server, err := m.AddPod(ctx, harness.PodOptions{Namespace: "demo", Name: "server", ServiceAccount: "server",
		Labels: map[string]string{"app": "server"}, HTTPPorts: []uint32{8080}, Sidecar: true, Delta: true})
	if err != nil {
		fail("%v", err)
	}
	client, err := m.AddPod(ctx, harness.PodOptions{Namespace: "demo", Name: "client", ServiceAccount: "client",
		Labels: map[string]string{"app": "client"}, HTTPPorts: []uint32{8080}, Sidecar: true})
	if err != nil {
		fail("%v", err)
	}
	legacy, err := m.AddPod(ctx, harness.PodOptions{Namespace: "legacy", Name: "sleep", HTTPPorts: []uint32{8080}})
	if err != nil {
		fail("%v", err)
	}
	vip, err := m.Cluster.AllocServiceIP()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Cluster.SetHosts(client.Pod, map[string]string{"server.demo": vip, "server.demo.svc.cluster.local": vip}); err != nil {
		t.Fatal(err)
	}
	prev, err := m.InputVersion(ctx)
	if err != nil {
		fail("%v", err)
	}
	if err := m.WriteConfig("00-workloads.yaml", foundationManifests(server.IP(), client.IP(), vip)); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitInputChange(ctx, prev, 20*time.Second); err != nil {
		fail("%v", err)
	}
	for _, p := range []*harness.Pod{server, client, legacy} {
		if err := m.WaitAppReady(ctx, p); err != nil {
			fail("%v", err)
		}
	}
	took, err := m.WaitSynced(ctx, []string{"server.demo", "client.demo"}, 60*time.Second)
	if err != nil {
		fail("%v", err)
	}
	t.Logf("proxies SYNCED after %v", took)

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
	prev, _ = m.InputVersion(ctx)
	if err := m.WriteConfig("10-strict.yaml", peerAuthn("PERMISSIVE")); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitInputChange(ctx, prev, 20*time.Second); err != nil {
		fail("%v", err)
	}
	took, err = m.WaitSynced(ctx, []string{"server.demo", "client.demo"}, 30*time.Second)
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
