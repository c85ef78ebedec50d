package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/inject"
)

// injectedMesh is wardend with a STRICT server (demo/server, Service server.demo) run
// from its injected Pod spec by the emulator's kubelet; the client pods of each test
// are added to it.
type injectedMesh struct {
	m      *harness.Mesh
	server *harness.Pod
	vip    string
	fail   func(format string, args ...any)
}

func injectedManifests(pods map[string]string, vip string) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Namespace\nmetadata: {name: demo, labels: {istio-injection: enabled}}\n")
	for name, ip := range pods {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: ServiceAccount
metadata: {name: %[1]s, namespace: demo}
---
apiVersion: v1
kind: Pod
metadata:
  name: %[1]s
  namespace: demo
  labels: {app: %[1]s}
  annotations: {warden.io/pod-ip: "%[2]s"}
spec:
  serviceAccountName: %[1]s
  containers: [{name: app, image: echo, ports: [{containerPort: 8080}]}]
`, name, ip)
	}
	fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: demo}
spec:
  clusterIP: %s
  selector: {app: server}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: demo}
spec: {mtls: {mode: STRICT}}
`, vip)
	return b.String()
}

// startInjected starts wardend knowing the server and the clients (their pods are
// created, not started), and runs the server from its injected spec.
func startInjected(ctx context.Context, t *testing.T, clients ...string) (*injectedMesh, map[string]*harness.Pod) {
	t.Helper()
	m, err := harness.Start(ctx, harness.Options{Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	im := &injectedMesh{m: m}
	im.fail = func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n%s", append(args, m.Diagnose(ctx))...)
	}
	ips := map[string]string{}
	pods := map[string]*harness.Pod{}
	for _, name := range append([]string{"server"}, clients...) {
		p, err := m.CreatePod(ctx, "demo", name)
		if err != nil {
			t.Fatal(err)
		}
		pods[name], ips[name] = p, p.IP()
	}
	if im.vip, err = m.Cluster.AllocServiceIP(); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if err := m.Cluster.SetHosts(p.Pod, map[string]string{"server.demo": im.vip}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.WriteConfig("00-demo.yaml", injectedManifests(ips, im.vip)); err != nil {
		t.Fatal(err)
	}
	if err := m.StartWardend(ctx); err != nil {
		t.Fatal(err)
	}
	im.server = pods["server"]
	o := harness.PodOptions{Namespace: "demo", Name: "server", ServiceAccount: "server",
		Labels: map[string]string{"app": "server"}, HTTPPorts: []uint32{8080}, Sidecar: true}
	if o.Injected, err = m.Inject(im.server, o, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.StartPod(ctx, im.server, o); err != nil {
		im.fail("%v", err)
	}
	if err := m.WaitAppReady(ctx, im.server); err != nil {
		im.fail("%v", err)
	}
	return im, pods
}

// clientPod is the injected spec of a pod whose app container is one request to
// server.demo, sent the moment the container starts: the app's first outbound request.
func (im *injectedMesh) clientPod(t *testing.T, p *harness.Pod) *corev1.Pod {
	t.Helper()
	o := harness.PodOptions{Namespace: "demo", Name: p.Name(), ServiceAccount: p.Name(), Labels: map[string]string{"app": p.Name()}}
	spec, err := im.m.Inject(p, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	app := &spec.Spec.Containers[0]
	app.Args = []string{"request", "-url", "http://server.demo/first", "-timeout", "5s"}
	app.Ports = nil
	return spec
}

// firstRequest runs spec in p with the mesh's kubelet and returns what the app's
// request got (its JSON output) and the kubelet's events.
func (im *injectedMesh) firstRequest(ctx context.Context, p *harness.Pod, spec *corev1.Pod) (harness.Result, []string) {
	kl, err := im.m.NewKubelet()
	if err != nil {
		im.fail("%v", err)
	}
	kp, err := kl.Run(ctx, p.Pod, spec)
	if err != nil {
		im.fail("%v", err)
	}
	app := kp.Container("app")
	select {
	case <-app.Exited():
	case <-ctx.Done():
		im.fail("the client app did not finish")
	}
	kp.Stop(ctx)
	out, err := os.ReadFile(app.LogPath())
	if err != nil {
		im.fail("%v", err)
	}
	var r harness.Result
	if err := json.Unmarshal(out, &r); err != nil {
		im.fail("client app output %q: %v", out, err)
	}
	return r, kp.Events
}

// TestInjectedFirstRequest runs pods from their injected spec (warden-init's capture,
// warden-bootstrap's bootstrap from the projected token and the root ConfigMap, Envoy
// as a native sidecar) in the kubelet's order: the app container starts only once
// Envoy's startupProbe passed, so its very first outbound request, sent the moment it
// starts, is already captured, goes out over mTLS and gets the STRICT server's 200.
// Without the startupProbe the kubelet starts the app right after Envoy's process,
// and that first request fails: nothing listens yet where capture sends it.
func TestInjectedFirstRequest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	im, pods := startInjected(ctx, t, "client", "early")

	r, events := im.firstRequest(ctx, pods["client"], im.clientPod(t, pods["client"]))
	if r.Status != 200 || !strings.Contains(r.Body, "URI=spiffe://cluster.local/ns/demo/sa/client") {
		im.fail("first request of the injected client: want 200 over mTLS (the server sees its SPIFFE ID), got %s %s\nkubelet: %v", r, r.Body, events)
	}
	want := []string{"started init container " + inject.ContainerCapture, "init container " + inject.ContainerCapture + " completed",
		"started init container " + inject.ContainerBootstrap, "init container " + inject.ContainerBootstrap + " completed",
		"started init container " + inject.ContainerProxy, "startupProbe " + inject.ContainerProxy + " passed", "started container app"}
	if got := strings.Join(events[:min(len(want), len(events))], "; "); got != strings.Join(want, "; ") {
		t.Errorf("kubelet order:\n got %s\nwant %s", got, strings.Join(want, "; "))
	}

	// The same pod without Envoy's startupProbe: the app starts as soon as Envoy's
	// process does, before Envoy has its listeners.
	early := im.clientPod(t, pods["early"])
	for i := range early.Spec.InitContainers {
		if early.Spec.InitContainers[i].Name == inject.ContainerProxy {
			early.Spec.InitContainers[i].StartupProbe = nil
		}
	}
	r, events = im.firstRequest(ctx, pods["early"], early)
	if r.Status == 200 {
		t.Errorf("without the startupProbe the first request got 200: the test cannot tell the order apart\nkubelet: %v", events)
	}
	t.Logf("without the startupProbe, the app's first request got: %s", r)
}

// TestInjectedStopInFlight stops the injected server pod while a request to it is in
// flight (the app answers after 3 s): the kubelet stops the app first (it finishes the
// request, then exits), then runs Envoy's preStop drain and only then sends Envoy
// SIGTERM, so the request gets its 200.
func TestInjectedStopInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	im, pods := startInjected(ctx, t, "client")
	m := im.m
	client := pods["client"]
	o := harness.PodOptions{Namespace: "demo", Name: "client", ServiceAccount: "client",
		Labels: map[string]string{"app": "client"}, HTTPPorts: []uint32{8080}, Sidecar: true}
	var err error
	if o.Injected, err = m.Inject(client, o, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.StartPod(ctx, client, o); err != nil {
		im.fail("%v", err)
	}
	if _, err := m.WaitSynced(ctx, []string{"server.demo", "client.demo"}, 60*time.Second); err != nil {
		im.fail("%v", err)
	}

	type answer struct {
		r   harness.Result
		err error
	}
	got := make(chan answer, 1)
	go func() {
		r, err := m.Request(ctx, client, "GET", "http://server.demo/slow", map[string]string{"x-delay": "3s"})
		got <- answer{r, err}
	}()
	// In flight: the server's Envoy has the request open upstream, at its app.
	gauge, err := waitGauge(ctx, im.server, "downstream_rq_active", "inbound")
	if err != nil {
		select {
		case a := <-got:
			im.fail("%v (the request already got %s %s, %v)", err, a.r, a.r.Body, a.err)
		default:
			im.fail("%v", err)
		}
	}
	stopped := make(chan struct{})
	go func() { im.server.Kube.Stop(ctx); close(stopped) }()
	a := <-got
	if a.err != nil {
		im.fail("%v", a.err)
	}
	if a.r.Status != 200 {
		im.fail("request in flight while the server pod stopped: want 200, got %s %s\nkubelet: %v", a.r, a.r.Body, im.server.Kube.Events)
	}
	<-stopped
	ev := strings.Join(im.server.Kube.Events, "; ")
	if !strings.HasSuffix(ev, "app containers stopped; sidecar "+inject.ContainerProxy+" stopped") {
		t.Errorf("stop order: %s, want the app containers, then Envoy", ev)
	}
	t.Logf("in flight (%s) when the pod was told to stop; kubelet: %v", gauge, im.server.Kube.Events)
}

// waitGauge polls p's Envoy admin /stats until a gauge whose name contains both name
// and part is above zero, and returns it.
func waitGauge(ctx context.Context, p *harness.Pod, name, part string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := p.Exec(ctx, "curl", "-sS", "--max-time", "2", "http://127.0.0.1:15000/stats?filter="+name+"&type=Gauges")
		if err == nil {
			for _, line := range strings.Split(string(out), "\n") {
				k, v, ok := strings.Cut(line, ": ")
				if ok && strings.Contains(k, part) && strings.TrimSpace(v) != "0" {
					return line, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no %s gauge of %s above 0 on %s: %s %v", name, part, p.ID(), out, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
