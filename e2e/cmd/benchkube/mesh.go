package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/wardenmesh/warden/e2e/kubeenv"
)

// Size is the mesh the benchmark creates.
type Size struct {
	Proxies, Namespaces, Policies int
}

// pod is one workload of the mesh: a Pod with its own ServiceAccount, Service and
// EndpointSlice, and (for wardend) a pod-bound token.
type pod struct {
	ns, name, ip string
	uid          string
	token        string
}

func nsName(i int) string { return fmt.Sprintf("ns-%03d", i) }

func appName(i int) string { return fmt.Sprintf("app-%05d", i) }

func podIP(i int) string { return fmt.Sprintf("10.%d.%d.%d", 100+i/65536, (i/256)%256, i%256) }

// policyNS is where policy p lives: in the namespace of the workload it selects.
func (s Size) policyApp(p int) (ns, app string) {
	j := p % s.Proxies
	return nsName(j % s.Namespaces), appName(j)
}

// nsPolicy is namespace AuthorizationPolicy p: DENY for one workload, from a principal
// (valid on TCP and HTTP ports alike). gen changes the rule, as a scoped change does.
func (s Size) nsPolicy(p, gen int) string {
	ns, app := s.policyApp(p)
	return fmt.Sprintf(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: pol-%05d, namespace: %s}
spec:
  selector: {matchLabels: {app: %s}}
  action: DENY
  rules: [{from: [{source: {principals: ["cluster.local/ns/blocked/sa/p%d-g%d"]}}]}]
`, p, ns, app, p, gen)
}

// meshDeny is the mesh-wide DENY policy (root namespace); gen changes it, as the
// mesh-wide change does.
func meshDeny(gen int) string {
	return fmt.Sprintf(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-deny, namespace: istio-system}
spec:
  action: DENY
  rules: [{from: [{source: {namespaces: ["blocked-%d"]}}]}]
`, gen)
}

const meshStrict = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return nil
}

// createMesh writes the whole mesh through the API server, workers requests at a time.
func createMesh(ctx context.Context, env *kubeenv.Env, s Size, workers int) ([]*pod, error) {
	if err := env.Apply(ctx, []byte(meshStrict+"---\n"+meshDeny(0))); err != nil {
		return nil, err
	}
	if err := parallel(ctx, s.Namespaces, workers, func(ctx context.Context, n int) error {
		return env.EnsureNamespace(ctx, nsName(n))
	}); err != nil {
		return nil, err
	}
	pods := make([]*pod, s.Proxies)
	err := parallel(ctx, s.Proxies, workers, func(ctx context.Context, i int) error {
		ns, app := nsName(i%s.Namespaces), appName(i)
		p := &pod{ns: ns, name: app, ip: podIP(i)}
		got, err := env.WritePod(ctx, kubeenv.Pod{Namespace: ns, Name: app, IP: p.ip, ServiceAccount: app,
			Labels: map[string]string{"app": app}, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}})
		if err != nil {
			return err
		}
		p.uid = string(got.UID)
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app}, Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), AppProtocol: ptr.To("http")}}}}
		if _, err := env.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Service %s/%s: %w", ns, app, err)
		}
		if err := env.WriteEndpointSlice(ctx, ns, app, []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)),
			AppProtocol: ptr.To("http")}}, []kubeenv.Endpoint{{IP: p.ip, Pod: app, Ready: true}}); err != nil {
			return err
		}
		if p.token, err = env.Token(ctx, ns, app, []string{kubeenv.ProxyTokenAudience}, got, 2*time.Hour); err != nil {
			return err
		}
		pods[i] = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := parallel(ctx, s.Policies, workers, func(ctx context.Context, p int) error {
		return env.Apply(ctx, []byte(s.nsPolicy(p, 0)))
	}); err != nil {
		return nil, err
	}
	return pods, nil
}
