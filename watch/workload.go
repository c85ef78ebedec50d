package watch

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Labels and annotations that decide how a workload joins the mesh.
const (
	LabelInjection  = "istio-injection"           // namespace label, "enabled"
	KeyInject       = "sidecar.istio.io/inject"   // pod label or annotation, "true"/"false"
	LabelTLSMode    = "security.istio.io/tlsMode" // pod label, "istio" when a sidecar runs
	LabelIstio      = "istio"                     // pod label, "ingressgateway"/"egressgateway"
	AnnotationPodIP = "warden.io/pod-ip"          // pod IP set by directory-mode runners
	// AnnotationInjectTemplates is Istio's injection template choice; "gateway" marks
	// a gateway pod (Istio's gateway Helm chart sets it on gateways of any label).
	AnnotationInjectTemplates = "inject.istio.io/templates"
	defaultServiceAcct        = "default"
)

func deploymentWorkload(m Meta, d *appsv1.Deployment, nsLabels map[string]string) *Workload {
	tmpl := &d.Spec.Template
	ip := tmpl.Annotations[AnnotationPodIP]
	if ip == "" {
		ip = m.Annotations[AnnotationPodIP]
	}
	return newWorkload(m, m.Name, tmpl.Labels, tmpl.Annotations, &tmpl.Spec, ip, nsLabels)
}

func podWorkload(m Meta, p *corev1.Pod, nsLabels map[string]string) *Workload {
	ip := p.Status.PodIP
	if ip == "" {
		ip = p.Annotations[AnnotationPodIP]
	}
	return newWorkload(m, m.Name, p.Labels, p.Annotations, &p.Spec, ip, nsLabels)
}

func newWorkload(m Meta, pod string, labels, annotations map[string]string, spec *corev1.PodSpec, ip string, nsLabels map[string]string) *Workload {
	sa := spec.ServiceAccountName
	if sa == "" {
		sa = defaultServiceAcct
	}
	var ports []Port
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			proto := string(p.Protocol)
			if proto == "" {
				proto = string(corev1.ProtocolTCP)
			}
			ports = append(ports, Port{Name: p.Name, Port: uint32(p.ContainerPort), Protocol: proto})
		}
	}
	return &Workload{
		Meta:           m,
		PodName:        pod,
		ServiceAccount: sa,
		PodLabels:      labels,
		PodAnnotations: annotations,
		IP:             ip,
		Ports:          ports,
		Sidecar:        sidecarInjected(nsLabels, labels, annotations),
		Gateway:        isGatewayPod(labels, annotations),
	}
}

// isGatewayPod reports whether the Pod object is a gateway's: label istio:
// ingressgateway or egressgateway (Istio's default gateways), or annotation
// inject.istio.io/templates: gateway (Istio's gateway injection template, which its
// gateway chart sets whatever the labels). This, never a proxy's node metadata, is
// the gateway role: only such a proxy is selected by Gateways and served their
// credentialName Secrets.
func isGatewayPod(labels, annotations map[string]string) bool {
	return labels[LabelIstio] == "ingressgateway" || labels[LabelIstio] == "egressgateway" ||
		annotations[AnnotationInjectTemplates] == "gateway"
}

// sidecarInjected decides whether a pod runs a sidecar: the tlsMode label says so
// outright; otherwise an explicit "false" (annotation or label) wins, then the
// namespace label or an explicit "true" turn injection on.
func sidecarInjected(nsLabels, labels, annotations map[string]string) bool {
	if labels[LabelTLSMode] == "istio" {
		return true
	}
	if annotations[KeyInject] == "false" || labels[KeyInject] == "false" {
		return false
	}
	return nsLabels[LabelInjection] == "enabled" || annotations[KeyInject] == "true" || labels[KeyInject] == "true"
}

// portByName finds a container port of the workload by name.
func (w *Workload) portByName(name string) (uint32, bool) {
	for _, p := range w.Ports {
		if p.Name == name {
			return p.Port, true
		}
	}
	return 0, false
}
