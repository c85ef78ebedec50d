package kubeenv

import (
	"context"
	"fmt"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// Pod is what a kubelet would report about one running pod.
type Pod struct {
	Namespace, Name string
	IP              string
	Labels          map[string]string
	Annotations     map[string]string
	ServiceAccount  string // "default" when empty
	Ports           []corev1.ContainerPort
	// Spec, when set, is the Pod's whole spec (an injected Pod) instead of one
	// container "app" with Ports; its service account is ServiceAccount.
	Spec *corev1.PodSpec
}

// WritePod creates or updates the Pod object (one container "app") and sets its status
// as a kubelet would: Running, Ready, with the IP. The namespace and service account
// are created when missing (no controller manager creates "default" here). It returns
// the Pod as stored, whose UID binds tokens to it.
func (e *Env) WritePod(ctx context.Context, p Pod) (*corev1.Pod, error) {
	sa := p.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	if err := e.ensureNamespace(ctx, p.Namespace); err != nil {
		return nil, err
	}
	if err := e.ensureServiceAccount(ctx, p.Namespace, sa); err != nil {
		return nil, err
	}
	pods := e.Client.CoreV1().Pods(p.Namespace)
	want := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, Annotations: p.Annotations},
		Spec: corev1.PodSpec{
			ServiceAccountName:           sa,
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "app", Image: "warden-e2e-app", Ports: p.Ports}},
		},
	}
	if p.Spec != nil {
		want.Spec = *p.Spec.DeepCopy()
		want.Spec.ServiceAccountName = sa
		if want.Spec.AutomountServiceAccountToken == nil {
			want.Spec.AutomountServiceAccountToken = ptr.To(false)
		}
	}
	cur, err := pods.Get(ctx, p.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cur, err = pods.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
	case err == nil:
		// Most of a pod's spec is immutable: update what may change in place.
		cur.Labels, cur.Annotations = p.Labels, p.Annotations
		cur, err = pods.Update(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager})
	}
	if err != nil {
		return nil, fmt.Errorf("write pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	now := metav1.NewTime(time.Now())
	cur.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: p.IP, PodIPs: []corev1.PodIP{{IP: p.IP}}, HostIP: "127.0.0.1", StartTime: &now,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}},
	}
	if p.IP == "" {
		cur.Status.PodIPs = nil
	}
	cur, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil {
		return nil, fmt.Errorf("write pod status %s/%s: %w", p.Namespace, p.Name, err)
	}
	return cur, nil
}

// Endpoint is one backend of a Service, as the endpoint controller would list it.
type Endpoint struct {
	IP    string
	Pod   string // the pod's name, for targetRef; optional
	Ready bool
}

// WriteEndpointSlice creates or replaces the EndpointSlice "<service>-e2e" of a Service
// in namespace, labelled kubernetes.io/service-name, with these ports and endpoints.
func (e *Env) WriteEndpointSlice(ctx context.Context, namespace, service string, ports []discoveryv1.EndpointPort, endpoints []Endpoint) error {
	return e.WriteNamedEndpointSlice(ctx, namespace, service, service+"-e2e", ports, endpoints)
}

// WriteNamedEndpointSlice is WriteEndpointSlice for a slice called name: a Service
// whose endpoints differ in their ports has several slices, as the endpoint controller
// writes them.
func (e *Env) WriteNamedEndpointSlice(ctx context.Context, namespace, service, name string, ports []discoveryv1.EndpointPort, endpoints []Endpoint) error {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: service,
			discoveryv1.LabelManagedBy:   "warden-e2e",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
	}
	for _, ep := range endpoints {
		d := discoveryv1.Endpoint{Addresses: []string{ep.IP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ep.Ready)}}
		if ep.Pod != "" {
			d.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: ep.Pod}
		}
		slice.Endpoints = append(slice.Endpoints, d)
	}
	c := e.Client.DiscoveryV1().EndpointSlices(namespace)
	cur, err := c.Get(ctx, slice.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = c.Create(ctx, slice, metav1.CreateOptions{FieldManager: FieldManager})
	case err == nil:
		slice.ResourceVersion = cur.ResourceVersion
		_, err = c.Update(ctx, slice, metav1.UpdateOptions{FieldManager: FieldManager})
	}
	if err != nil {
		return fmt.Errorf("write EndpointSlice %s/%s: %w", namespace, slice.Name, err)
	}
	return nil
}

// Token returns a service-account token from the TokenRequest API for audiences,
// bound to pod when pod is not nil (as a projected token in that pod would be).
func (e *Env) Token(ctx context.Context, namespace, serviceAccount string, audiences []string, pod *corev1.Pod, ttl time.Duration) (string, error) {
	req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: ptr.To(int64(ttl.Seconds()))}}
	if pod != nil {
		req.Spec.BoundObjectRef = &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	res, err := e.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", namespace, serviceAccount, err)
	}
	return res.Status.Token, nil
}

// Kubeconfig returns a kubeconfig for this API server that authenticates with token.
func (e *Env) Kubeconfig(token string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: e.URL(), CertificateAuthorityData: e.pki.caPEM}
	cfg.AuthInfos["e2e"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "e2e"}
	cfg.CurrentContext = "e2e"
	return clientcmd.Write(*cfg)
}

// EnsureNamespace creates the Namespace name, without labels, unless it exists.
func (e *Env) EnsureNamespace(ctx context.Context, name string) error {
	return e.ensureNamespace(ctx, name)
}

func (e *Env) ensureNamespace(ctx context.Context, name string) error {
	_, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

func (e *Env) ensureServiceAccount(ctx context.Context, namespace, name string) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	_, err := e.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create service account %s/%s: %w", namespace, name, err)
	}
	return nil
}

// finalizeNamespace does the namespace controller's last step for a deleted namespace
// (none runs here): it clears the finalizers so the Namespace goes away. Objects in it
// are not deleted.
func (e *Env) finalizeNamespace(ctx context.Context, name string) error {
	ns, err := e.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finalize namespace %s: %w", name, err)
	}
	ns.Spec.Finalizers = nil
	if _, err := e.Client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalize namespace %s: %w", name, err)
	}
	return nil
}
