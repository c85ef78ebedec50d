package kubeenv

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What a kubelet reads from the API server to fill a pod's volumes.

// ProjectedToken is the token a kubelet writes into pod's projected
// serviceAccountToken volume src: from the TokenRequest API, for the pod's service
// account and src's audience (the API server's when empty), bound to the Pod object,
// valid for src's expirationSeconds (one hour when unset, as the kubelet defaults it).
func (e *Env) ProjectedToken(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) ([]byte, error) {
	ttl := time.Hour
	if src.ExpirationSeconds != nil {
		ttl = time.Duration(*src.ExpirationSeconds) * time.Second
	}
	var aud []string
	if src.Audience != "" {
		aud = []string{src.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tok, err := e.Token(ctx, pod.Namespace, sa, aud, pod, ttl)
	return []byte(tok), err
}

// ConfigMapData is what a kubelet mounts for a configMap volume: the data of the
// ConfigMap namespace/name as the API server holds it.
func (e *Env) ConfigMapData(ctx context.Context, namespace, name string) (map[string]string, error) {
	cm, err := e.Client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("configMap %s/%s: %w", namespace, name, err)
	}
	return cm.Data, nil
}
