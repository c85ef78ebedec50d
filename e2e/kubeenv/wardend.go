package kubeenv

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What deploy/ names; a runner that applied deploy/ uses these.
const (
	WardendNamespace      = "warden-system"
	WardendServiceAccount = "wardend"
	ProxyTokenAudience    = "warden" // wardend's default --token-audience
)

// ServiceAccountKubeconfig returns a kubeconfig that acts as namespace/serviceAccount
// (its token from the TokenRequest API, valid for ttl): with deploy/ applied,
// ServiceAccountKubeconfig(ctx, WardendNamespace, WardendServiceAccount, time.Hour) runs
// wardend with exactly its ClusterRole's rights.
func (e *Env) ServiceAccountKubeconfig(ctx context.Context, namespace, serviceAccount string, ttl time.Duration) ([]byte, error) {
	tok, err := e.Token(ctx, namespace, serviceAccount, nil, nil, ttl)
	if err != nil {
		return nil, err
	}
	return e.Kubeconfig(tok)
}

// MeshRootPEM returns the mesh root wardend serves from namespace: root-cert.pem of the
// plug-in Secret cacerts, else of warden-ca (which wardend creates on its first start).
func (e *Env) MeshRootPEM(ctx context.Context, namespace string) ([]byte, error) {
	for _, name := range []string{"cacerts", "warden-ca"} {
		s, err := e.Client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read Secret %s/%s: %w", namespace, name, err)
		}
		if root := s.Data["root-cert.pem"]; len(root) > 0 {
			return root, nil
		}
	}
	return nil, fmt.Errorf("no mesh root in %s: is wardend running?", namespace)
}
