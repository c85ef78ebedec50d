package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/inject"
)

const meshStrict = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
`

const webService = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
`

// TestInjectedPodInKubernetesMode is the injector end to end, as in a cluster: wardend
// in Kubernetes mode behind a real kube-apiserver that calls its webhook; Pods created
// through the API in an istio-injection=enabled namespace are stored injected; the
// emulator kubelet runs the stored Pods in real network namespaces, with the projected
// token from the TokenRequest API (bound to the stored Pod) and the mesh root from the
// warden-ca-root ConfigMap wardend published there. Under mesh-wide STRICT (applied
// through the API) the kubelet's plaintext probe on the rewritten path, read from the
// stored Pod, gets the app's answer, plaintext to the app port is refused, and a
// client pod's very first outbound request, sent the moment its app starts, gets the
// server's 200 over mTLS.
func TestInjectedPodInKubernetesMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	p := begin(t, "pods' network, kube-apiserver, deploy/ with the injector, wardend in Kubernetes mode, mesh-wide STRICT")
	// The API server calls the webhook at 127.0.0.1: wardend's serving certificate names it.
	m, err := harness.Start(ctx, harness.Options{Log: log, WardendArgs: []string{"--server-name", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	env, err := kubeenv.Start(ctx, kubeenv.Options{ServiceCIDR: m.Cluster.ServiceCIDR(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// wardend runs on the host, not as deploy/'s Deployment.
	files = slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == "30-wardend.yaml" })
	if err := env.ApplyFiles(ctx, files...); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "demo", Labels: map[string]string{inject.NamespaceLabel: "enabled"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.Apply(ctx, []byte(meshStrict+"---"+webService)); err != nil {
		t.Fatal(err)
	}
	kc, err := env.ServiceAccountKubeconfig(ctx, kubeenv.WardendNamespace, kubeenv.WardendServiceAccount, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	m.Kubeconfig = filepath.Join(m.Cluster.WorkDir(), "wardend.kubeconfig")
	if err := os.WriteFile(m.Kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.StartWardend(ctx); err != nil {
		t.Fatal(err)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n--- wardend log (tail) ---\n%s", append(args, m.WardendLogTail(60))...)
	}
	root, err := env.MeshRootPEM(ctx, kubeenv.WardendNamespace)
	if err != nil {
		t.Fatal(err)
	}
	webhookByURL(t, ctx, env, m.InjectAddr, root)
	waitFor(t, ctx, 30*time.Second, "demo/warden-ca-root published", rootConfigMapIs(ctx, env, "demo", root))
	// The kubelet of the stored Pods: what it mounts comes from the API server.
	kl, err := m.NewKubelet()
	if err != nil {
		t.Fatal(err)
	}
	kl.Token = env.ProjectedToken
	kl.ConfigMap = env.ConfigMapData
	m.Kubelet = kl
	p.end()

	p = begin(t, "pod demo/web created through the API (httpGet readiness and liveness probes) is stored injected")
	web, err := m.CreatePod(ctx, "demo", "web")
	if err != nil {
		t.Fatal(err)
	}
	wo := harness.PodOptions{Namespace: "demo", Name: "web", ServiceAccount: "web", Labels: map[string]string{"app": "web"},
		HTTPPorts: []uint32{8080}, Sidecar: true}
	base, err := m.BasePod(web, wo, nil)
	if err != nil {
		t.Fatal(err)
	}
	app := &base.Spec.Containers[0]
	app.Ports[0].Name = "http"
	app.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}}
	app.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/alive", Port: intstr.FromInt32(8080)}}}
	stored := createThroughAPI(t, ctx, env, base, web.IP())
	readyz, livez := rewrittenProbe(t, stored, "readiness"), rewrittenProbe(t, stored, "liveness")
	if err := env.WriteEndpointSlice(ctx, "demo", "web",
		[]discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		[]kubeenv.Endpoint{{IP: web.IP(), Pod: "web", Ready: true}}); err != nil {
		t.Fatal(err)
	}
	p.end()

	p = begin(t, "the kubelet runs the stored web Pod: init containers, Envoy's startup probe, the app")
	wo.Injected = stored
	if err := m.StartPod(ctx, web, wo); err != nil {
		fail("%v", err)
	}
	if err := m.WaitAppReady(ctx, web); err != nil {
		fail("%v", err)
	}
	t.Logf("kubelet: %s", strings.Join(web.Kube.Events, "; "))
	p.end()

	p = begin(t, "under STRICT: plaintext probes on the stored Pod's rewritten paths get the app's answer, plaintext to 8080 is refused")
	// The kubelet: plain HTTP from the node (the host), one connection per probe.
	kubelet := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for path, orig := range map[string]string{readyz: "/ready", livez: "/alive"} {
		url := fmt.Sprintf("http://%s:%d%s", web.IP(), inject.DefaultConfig().StatusPort, path)
		waitFor(t, ctx, 30*time.Second, "GET "+url+" answered by the app", func() error {
			status, body, err := get(kubelet, url)
			if err != nil || status != 200 {
				return fmt.Errorf("%d %q %v", status, body, err)
			}
			var echo struct {
				Path string `json:"path"`
			}
			if err := json.Unmarshal([]byte(body), &echo); err != nil || echo.Path != orig {
				return fmt.Errorf("not the echo app's answer to %s: %q", orig, body)
			}
			return nil
		})
	}
	if status, body, err := get(kubelet, fmt.Sprintf("http://%s:8080/ready", web.IP())); err == nil {
		fail("plaintext to the app port under STRICT: want a connection error, got %d %q", status, body)
	} else {
		t.Logf("plaintext to %s:8080: %v", web.IP(), err)
	}
	p.end()

	p = begin(t, "an injected client's first outbound request, sent as its app starts, gets web's 200 over mTLS")
	cnet, err := m.CreatePod(ctx, "demo", "client")
	if err != nil {
		t.Fatal(err)
	}
	vip, err := env.Client.CoreV1().Services("demo").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Cluster.SetHosts(cnet.Pod, map[string]string{"web.demo": vip.Spec.ClusterIP}); err != nil {
		t.Fatal(err)
	}
	cbase, err := m.BasePod(cnet, harness.PodOptions{Namespace: "demo", Name: "client", ServiceAccount: "client",
		Labels: map[string]string{"app": "client"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cbase.Spec.Containers[0].Args = []string{"request", "-url", "http://web.demo/first", "-timeout", "5s"}
	cbase.Spec.Containers[0].Ports = nil
	cstored := createThroughAPI(t, ctx, env, cbase, cnet.IP())
	kp, err := kl.Run(ctx, cnet.Pod, cstored)
	if err != nil {
		fail("%v", err)
	}
	capp := kp.Container("app")
	select {
	case <-capp.Exited():
	case <-ctx.Done():
		fail("the client app did not finish")
	}
	kp.Stop(ctx)
	out, err := os.ReadFile(capp.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	var r harness.Result
	if err := json.Unmarshal(out, &r); err != nil {
		fail("client app output %q: %v", out, err)
	}
	if r.Status != 200 || !strings.Contains(r.Body, "URI=spiffe://cluster.local/ns/demo/sa/client") {
		fail("first request of the injected client: want 200 over mTLS (web sees its SPIFFE ID), got %s %q\nkubelet: %v", r, r.Body, kp.Events)
	}
	t.Logf("first request: %s; kubelet: %s", r, strings.Join(kp.Events, "; "))
	p.end()
}

// createThroughAPI creates pod through the API server (so the webhook injects it), as
// a controller would, then reports it running at ip as its kubelet would, and returns
// the Pod the API server stored. The first create may race the webhook's configuration
// reaching the API server's admission chain (refused: failurePolicy Fail): it is
// retried until admitted.
func createThroughAPI(t *testing.T, ctx context.Context, env *kubeenv.Env, pod *corev1.Pod, ip string) *corev1.Pod {
	t.Helper()
	var stored *corev1.Pod
	waitFor(t, ctx, 30*time.Second, "pod "+pod.Namespace+"/"+pod.Name+" admitted", func() error {
		var err error
		stored, err = env.WritePod(ctx, kubeenv.Pod{Namespace: pod.Namespace, Name: pod.Name, IP: ip, Labels: pod.Labels,
			Annotations: pod.Annotations, ServiceAccount: pod.Spec.ServiceAccountName, Spec: &pod.Spec})
		return err
	})
	want := []string{inject.ContainerCapture, inject.ContainerBootstrap, inject.ContainerProxy}
	if got := initNames(stored); !slices.Equal(got, want) {
		t.Fatalf("pod %s/%s as stored: init containers %v, want %v", pod.Namespace, pod.Name, got, want)
	}
	return stored
}

// rewrittenProbe returns the path of the app container's readiness or liveness probe
// in the stored Pod, which must be httpGet on the sidecar's status port.
func rewrittenProbe(t *testing.T, pod *corev1.Pod, which string) string {
	t.Helper()
	c := pod.Spec.Containers[0]
	pr := c.ReadinessProbe
	if which == "liveness" {
		pr = c.LivenessProbe
	}
	if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Port != intstr.FromInt32(inject.DefaultConfig().StatusPort) ||
		!strings.HasPrefix(pr.HTTPGet.Path, "/app-health/"+c.Name+"/") {
		t.Fatalf("pod %s/%s as stored: %s probe %+v, want httpGet /app-health/%s/... on %d", pod.Namespace, pod.Name,
			which, pr, c.Name, inject.DefaultConfig().StatusPort)
	}
	return pr.HTTPGet.Path
}

func get(c *http.Client, url string) (int, string, error) {
	res, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}
