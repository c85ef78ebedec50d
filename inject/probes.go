package inject

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Prober is one application probe as the app container declared it, its named port
// resolved: the value type of AnnotationAppProbers (Istio's Prober in
// pkg/kube/inject/app_probe.go).
type Prober struct {
	HTTPGet        *corev1.HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket      *corev1.TCPSocketAction `json:"tcpSocket,omitempty"`
	GRPC           *corev1.GRPCAction      `json:"grpc,omitempty"`
	TimeoutSeconds int32                   `json:"timeoutSeconds,omitempty"`
}

// ProbePaths returns the rewritten paths of a container's probes, Istio's
// status.FormatProberURL: /app-health/<container>/livez, readyz and startupz.
func ProbePaths(container string) (livez, readyz, startupz string) {
	base := "/app-health/" + container
	return base + "/livez", base + "/readyz", base + "/startupz"
}

// ParseAppProbers decodes AnnotationAppProbers; one invalid entry fails the whole
// value (wardend, which must serve the valid entries, checks each with Validate).
func ParseAppProbers(v string) (map[string]Prober, error) {
	out := map[string]Prober{}
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, err
	}
	for path, p := range out {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return out, nil
}

// Validate checks that p has exactly one action and a port in range.
func (p Prober) Validate() error {
	n := 0
	for _, set := range []bool{p.HTTPGet != nil, p.TCPSocket != nil, p.GRPC != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("want exactly one of httpGet, tcpSocket, grpc")
	}
	if port := p.Port(); port <= 0 || port > 65535 {
		return fmt.Errorf("port is not a number in 1-65535 (named ports are resolved by the injector)")
	}
	return nil
}

// Port is the application port p probes (0 when it has no action or a named port).
func (p Prober) Port() int {
	switch {
	case p.HTTPGet != nil:
		return p.HTTPGet.Port.IntValue()
	case p.TCPSocket != nil:
		return p.TCPSocket.Port.IntValue()
	case p.GRPC != nil:
		return int(p.GRPC.Port)
	}
	return 0
}

// rewriteAppProbes points the httpGet, tcpSocket and grpc probes of the app containers
// at the proxy's application-probe listener, as Istio's convertProbe does, and returns
// the originals as the AnnotationAppProbers value ("" when there were none). A probe
// whose named port the container does not declare is left as it is, with a warning (Istio
// drops it from the prober map the same way).
func rewriteAppProbes(cfg Config, pod *corev1.Pod) (string, []string) {
	probers := map[string]Prober{}
	var warn []string
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		livez, readyz, startupz := ProbePaths(c.Name)
		ports := map[string]int32{}
		for _, p := range c.Ports {
			if p.Name != "" {
				ports[p.Name] = p.ContainerPort
			}
		}
		for _, probe := range []struct {
			field string
			p     **corev1.Probe
			path  string
		}{{"livenessProbe", &c.LivenessProbe, livez}, {"readinessProbe", &c.ReadinessProbe, readyz}, {"startupProbe", &c.StartupProbe, startupz}} {
			if *probe.p == nil {
				continue
			}
			orig, ok, w := prober(**probe.p, ports)
			if w != "" {
				warn = append(warn, fmt.Sprintf("container %q %s: %s; probe left as it is", c.Name, probe.field, w))
			}
			if !ok {
				continue
			}
			probers[probe.path] = orig
			*probe.p = rewritten(**probe.p, probe.path, cfg.StatusPort)
		}
	}
	if len(probers) == 0 {
		return "", warn
	}
	b, err := json.Marshal(probers) // map keys sorted: deterministic
	if err != nil {
		panic(err) // plain structs of strings and numbers
	}
	return string(b), warn
}

// prober returns the original form of p with its port resolved, and whether it is one
// the proxy can take over.
func prober(p corev1.Probe, ports map[string]int32) (Prober, bool, string) {
	resolve := func(port intstr.IntOrString) (intstr.IntOrString, string) {
		if port.Type == intstr.String {
			n, ok := ports[port.StrVal]
			if !ok {
				return port, fmt.Sprintf("port %q is not a named port of the container", port.StrVal)
			}
			return intstr.FromInt32(n), ""
		}
		return port, ""
	}
	out := Prober{TimeoutSeconds: p.TimeoutSeconds}
	switch {
	case p.HTTPGet != nil:
		h := p.HTTPGet.DeepCopy()
		port, w := resolve(h.Port)
		if w != "" {
			return Prober{}, false, w
		}
		h.Port = port
		out.HTTPGet = h
	case p.TCPSocket != nil:
		s := p.TCPSocket.DeepCopy()
		port, w := resolve(s.Port)
		if w != "" {
			return Prober{}, false, w
		}
		s.Port = port
		out.TCPSocket = s
	case p.GRPC != nil:
		out.GRPC = p.GRPC.DeepCopy()
	default:
		return Prober{}, false, "" // exec probes run in the container: nothing to rewrite
	}
	return out, true, ""
}

// rewritten is Istio's convertAppProber: an httpGet to the status port and path, scheme
// HTTP (the proxy speaks HTTPS to the app when the original did), no host (the pod IP),
// everything else kept.
func rewritten(p corev1.Probe, path string, statusPort int32) *corev1.Probe {
	q := p.DeepCopy()
	if q.HTTPGet == nil {
		q.HTTPGet = &corev1.HTTPGetAction{}
	}
	q.HTTPGet.Path, q.HTTPGet.Port, q.HTTPGet.Scheme = path, intstr.FromInt32(statusPort), corev1.URISchemeHTTP
	// The kubelet must reach this pod's status port; the original host is kept in the
	// prober, and the sidecar sends it to the app as the Host header.
	q.HTTPGet.Host = ""
	q.TCPSocket = nil
	q.GRPC = nil
	return q
}
