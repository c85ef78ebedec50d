package runner

import (
	"context"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/inject"
)

// setUpInject gives the mesh the kubelet that runs every sidecar pod from its
// injected spec (-inject). The root ConfigMap holds the mesh root the backend knows;
// the projected token is, in kube mode, a TokenRequest token for the pod's service
// account bound to the Pod object, and in dir mode the token the harness signs.
func setUpInject(m *harness.Mesh, b backend, w *world) error {
	kl, err := m.NewKubelet()
	if err != nil {
		return err
	}
	root := func(ctx context.Context) ([]byte, error) {
		ca, err := b.meshCA(ctx, w.trustDomain)
		if err != nil {
			return nil, err
		}
		return ca.RootPEM(), nil
	}
	if kb, ok := b.(*kubeBackend); ok {
		root = func(context.Context) ([]byte, error) { return os.ReadFile(kb.root) }
		kl.Token = func(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) ([]byte, error) {
			ttl := credentialTTL
			if src.ExpirationSeconds != nil {
				ttl = time.Duration(*src.ExpirationSeconds) * time.Second
			}
			var aud []string
			if src.Audience != "" {
				aud = []string{src.Audience}
			}
			tok, err := kb.env.Token(ctx, pod.Namespace, pod.Spec.ServiceAccountName, aud, pod, ttl)
			return []byte(tok), err
		}
	}
	cm := m.InjectConfig().RootConfigMap
	kl.ConfigMap = func(ctx context.Context, ns, name string) (map[string]string, error) {
		if name != cm {
			return nil, fmt.Errorf("no ConfigMap %s/%s", ns, name)
		}
		pem, err := root(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]string{inject.RootCertKey: string(pem)}, nil
	}
	m.Kubelet = kl
	return nil
}
