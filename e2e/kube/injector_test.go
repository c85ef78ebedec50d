package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/inject"
)

// warnings collects the admission warnings the API server relays to a client.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// TestSidecarInjectorInKubernetesMode runs wardend's sidecar injection webhook behind a
// real kube-apiserver: wardend fixes the webhook's caBundle (the API server then trusts
// its serving certificate), Pods created in an istio-injection=enabled namespace come
// back injected, opted-out and unlabelled ones do not, a malformed annotation is a
// warning the client sees, failurePolicy Fail refuses pods while wardend is down, and
// the mesh root ConfigMap is in every namespace, recreated, restored, and replaced when
// wardend restarts with a new root.
func TestSidecarInjectorInKubernetesMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	work := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	p := begin(t, "start the API server, apply deploy/ (with 40-injector.yaml), start wardend")
	bin, err := harness.FindBinaries(ctx, filepath.Join(work, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := kubeenv.Start(ctx, kubeenv.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	if err := env.ApplyFiles(ctx, filepath.Join(repoRoot(t), "deploy")); err != nil {
		t.Fatal(err)
	}
	kc, err := env.ServiceAccountKubeconfig(ctx, kubeenv.WardendNamespace, kubeenv.WardendServiceAccount, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kcPath := filepath.Join(work, "wardend.kubeconfig")
	if err := os.WriteFile(kcPath, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	for ns, labels := range map[string]map[string]string{"inj": {inject.NamespaceLabel: "enabled"}, "plain": nil} {
		if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// No controller manager here makes the "default" ServiceAccount pods need.
		if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	images := []string{"--inject-proxy-image", "envoy-e2e:1", "--inject-init-image", "wardend-e2e:1"}
	w := startWardend(t, ctx, bin.Wardend, kcPath, work, images...)
	root, err := env.MeshRootPEM(ctx, kubeenv.WardendNamespace)
	if err != nil {
		t.Fatal(err)
	}
	p.end()

	p = begin(t, "wardend sets the deploy/ webhook's empty caBundle, and restores a wrong one on a URL webhook")
	webhookByURL(t, ctx, env, w.inject, root)
	p.end()

	warned := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = warned
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	create := func(ns, name string, labels, annotations map[string]string) (*corev1.Pod, error) {
		return client.CoreV1().Pods(ns).Create(ctx, appPod(ns, name, labels, annotations), metav1.CreateOptions{})
	}

	p = begin(t, "a pod in the enabled namespace is injected; opted out and unlabelled ones are not")
	// The first pods may race the webhook's new configuration reaching the API
	// server's admission chain: retry the create until it is admitted.
	var pod *corev1.Pod
	waitFor(t, ctx, 30*time.Second, "pod inj/web admitted", func() error {
		pod, err = create("inj", "web", nil, nil)
		return err
	})
	checkInjected(t, pod)
	if ws := warned.take(); len(ws) != 0 {
		t.Errorf("well-formed pod got warnings %q", ws)
	}
	pod, err = create("inj", "optout", map[string]string{"sidecar.istio.io/inject": "false"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkNotInjected(t, pod)
	pod, err = create("plain", "web", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkNotInjected(t, pod)
	p.end()

	p = begin(t, "a malformed annotation is an admission warning, and the pod is injected with defaults")
	pod, err = create("inj", "badports", nil, map[string]string{"traffic.sidecar.istio.io/excludeOutboundPorts": "abc"})
	if err != nil {
		t.Fatal(err)
	}
	checkInjected(t, pod)
	ws := warned.take()
	if !slices.ContainsFunc(ws, func(s string) bool {
		return strings.Contains(s, "traffic.sidecar.istio.io/excludeOutboundPorts") && strings.Contains(s, "abc")
	}) {
		t.Errorf("warnings %q do not name traffic.sidecar.istio.io/excludeOutboundPorts=abc", ws)
	}
	p.end()

	p = begin(t, "the mesh root ConfigMap: in every namespace, recreated after delete, restored after edit")
	rootInEveryNamespace(t, ctx, env, root)
	cms := env.Client.CoreV1().ConfigMaps
	if err := cms("plain").Delete(ctx, "warden-ca-root", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 30*time.Second, "plain/warden-ca-root recreated", rootConfigMapIs(ctx, env, "plain", root))
	cm, err := cms("inj").Get(ctx, "warden-ca-root", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{"root-cert.pem": "not the mesh root", "extra": "x"}
	if _, err := cms("inj").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 30*time.Second, "inj/warden-ca-root restored", rootConfigMapIs(ctx, env, "inj", root))
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "later"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 30*time.Second, "later/warden-ca-root published", rootConfigMapIs(ctx, env, "later", root))
	// wardend's RBAC reads that one ConfigMap name, no other.
	wcfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	wclient, err := kubernetes.NewForConfig(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wclient.CoreV1().ConfigMaps("inj").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("wardend may list every ConfigMap (err %v), want Forbidden", err)
	}
	if _, err := wclient.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=warden-ca-root"}); err != nil {
		t.Errorf("wardend may not list warden-ca-root: %v", err)
	}
	p.end()

	p = begin(t, "wardend stopped: failurePolicy Fail refuses pods in the enabled namespace only")
	w.stop()
	if _, err := create("inj", "refused", nil, nil); err == nil {
		t.Fatal("pod inj/refused admitted while the injector is down (failurePolicy Fail)")
	} else if !strings.Contains(err.Error(), "sidecar-injector.warden.io") {
		t.Fatalf("pod inj/refused: error %v does not name the webhook", err)
	}
	pod, err = create("plain", "admitted", nil, nil)
	if err != nil {
		t.Fatalf("pod in an unlabelled namespace refused while the injector is down: %v", err)
	}
	checkNotInjected(t, pod)
	p.end()

	// wardend has no live root rotation: its CA is loaded at start. A restart with a
	// new root (here, warden-ca deleted, so wardend creates a new self-signed one) must
	// replace the root everywhere it was published.
	p = begin(t, "wardend restarted with a new mesh root: ConfigMaps and caBundle follow")
	if err := env.Client.CoreV1().Secrets(kubeenv.WardendNamespace).Delete(ctx, "warden-ca", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	work2 := filepath.Join(work, "restart")
	if err := os.Mkdir(work2, 0o755); err != nil {
		t.Fatal(err)
	}
	w = startWardend(t, ctx, bin.Wardend, kcPath, work2, append(images, "--inject-addr", w.inject)...)
	root2, err := env.MeshRootPEM(ctx, kubeenv.WardendNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(root, root2) {
		t.Fatal("the restarted wardend kept the old root")
	}
	waitFor(t, ctx, 30*time.Second, "caBundle = new mesh root", caBundleIs(ctx, env, root2))
	for _, ns := range []string{"inj", "plain", "later", "default"} {
		waitFor(t, ctx, 30*time.Second, ns+"/warden-ca-root = new root", rootConfigMapIs(ctx, env, ns, root2))
	}
	waitFor(t, ctx, 30*time.Second, "pod inj/after-restart admitted", func() error {
		pod, err = create("inj", "after-restart", nil, nil)
		return err
	})
	checkInjected(t, pod)
	p.end()
}

// caBundleIs checks every webhook of deploy/'s MutatingWebhookConfiguration trusts want.
func caBundleIs(ctx context.Context, env *kubeenv.Env, want []byte) func() error {
	return func() error {
		mwc, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "warden-sidecar-injector", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, wh := range mwc.Webhooks {
			if !bytes.Equal(wh.ClientConfig.CABundle, want) {
				return fmt.Errorf("webhook %s caBundle is %d bytes, not the mesh root", wh.Name, len(wh.ClientConfig.CABundle))
			}
		}
		return nil
	}
}

// webhookByURL waits until wardend has set the caBundle of deploy/40-injector.yaml's
// webhook to the mesh root, then points the webhook at wardend's webhook address addr
// by URL (the API server here has no route to the Service wardend) with a wrong bundle,
// the API server's own CA, and waits until wardend has restored the root: from then
// on the API server calls wardend for every Pod it is to inject.
func webhookByURL(t *testing.T, ctx context.Context, env *kubeenv.Env, addr string, root []byte) {
	t.Helper()
	waitFor(t, ctx, 30*time.Second, "caBundle = mesh root", caBundleIs(ctx, env, root))
	mwcs := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := mwcs.Get(ctx, "warden-sidecar-injector", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(mwc.Webhooks) != 1 {
		t.Fatalf("deploy/40-injector.yaml has %d webhooks, want 1", len(mwc.Webhooks))
	}
	mwc.Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{
		URL: ptr.To("https://" + addr + "/inject"), CABundle: env.CAPEM()}
	if _, err := mwcs.Update(ctx, mwc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 30*time.Second, "wardend to restore the overwritten caBundle", caBundleIs(ctx, env, root))
}

// appPod is one application container with a named port and an httpGet readiness
// probe on it.
func appPod(ns, name string, labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "warden-e2e-app",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}},
		}}},
	}
}

func initNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	return names
}

// checkInjected checks the Pod as the API server stored it: the three init containers
// and the readiness probe moved to the proxy's 15020, the original in the annotation.
func checkInjected(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	want := []string{inject.ContainerCapture, inject.ContainerBootstrap, inject.ContainerProxy}
	if got := initNames(pod); !slices.Equal(got, want) {
		t.Fatalf("pod %s/%s init containers %v, want %v", pod.Namespace, pod.Name, got, want)
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == inject.ContainerProxy && c.Image != "envoy-e2e:1" {
			t.Errorf("pod %s/%s: envoy image %q, want --inject-proxy-image envoy-e2e:1", pod.Namespace, pod.Name, c.Image)
		}
		if c.Name == inject.ContainerCapture && c.Image != "wardend-e2e:1" {
			t.Errorf("pod %s/%s: warden-init image %q, want --inject-init-image wardend-e2e:1", pod.Namespace, pod.Name, c.Image)
		}
	}
	_, readyz, _ := inject.ProbePaths("app")
	rp := pod.Spec.Containers[0].ReadinessProbe
	if rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != readyz || rp.HTTPGet.Port != intstr.FromInt32(15020) {
		t.Fatalf("pod %s/%s readinessProbe %+v, want httpGet %s on 15020", pod.Namespace, pod.Name, rp, readyz)
	}
	probers, err := inject.ParseAppProbers(pod.Annotations[inject.AnnotationAppProbers])
	if err != nil {
		t.Fatalf("pod %s/%s annotation %s: %v", pod.Namespace, pod.Name, inject.AnnotationAppProbers, err)
	}
	orig, ok := probers[readyz]
	if !ok || orig.HTTPGet == nil || orig.HTTPGet.Path != "/ready" || orig.HTTPGet.Port.IntValue() != 8080 {
		t.Fatalf("pod %s/%s annotation %s = %q, want the original /ready on 8080", pod.Namespace, pod.Name,
			inject.AnnotationAppProbers, pod.Annotations[inject.AnnotationAppProbers])
	}
}

func checkNotInjected(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if len(pod.Spec.InitContainers) != 0 || pod.Annotations[inject.AnnotationAppProbers] != "" {
		t.Fatalf("pod %s/%s was injected (init containers %v)", pod.Namespace, pod.Name, initNames(pod))
	}
	if p := pod.Spec.Containers[0].ReadinessProbe.HTTPGet; p.Path != "/ready" {
		t.Fatalf("pod %s/%s readiness probe rewritten to %s", pod.Namespace, pod.Name, p.Path)
	}
}

// rootConfigMapIs checks ConfigMap warden-ca-root in ns holds exactly the root.
func rootConfigMapIs(ctx context.Context, env *kubeenv.Env, ns string, root []byte) func() error {
	return func() error {
		cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "warden-ca-root", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(cm.Data) != 1 || cm.Data["root-cert.pem"] != string(root) {
			return fmt.Errorf("%s/warden-ca-root has keys %d, root-cert.pem %q...", ns, len(cm.Data), head(cm.Data["root-cert.pem"]))
		}
		return nil
	}
}

func head(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

// rootInEveryNamespace waits until every namespace has the root ConfigMap.
func rootInEveryNamespace(t *testing.T, ctx context.Context, env *kubeenv.Env, root []byte) {
	t.Helper()
	waitFor(t, ctx, 30*time.Second, "warden-ca-root in every namespace", func() error {
		nss, err := env.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var errs []error
		var names []string
		for _, ns := range nss.Items {
			names = append(names, ns.Name)
			errs = append(errs, rootConfigMapIs(ctx, env, ns.Name, root)())
		}
		for _, want := range []string{"default", "kube-system", "kube-public", "warden-system", "istio-system", "inj", "plain"} {
			if !slices.Contains(names, want) {
				errs = append(errs, fmt.Errorf("namespace %s not listed", want))
			}
		}
		return errors.Join(errs...)
	})
}
