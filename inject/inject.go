package inject

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"istio.io/api/annotation"
	"istio.io/api/label"
	meshconfig "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Names of what the injector adds. A pod that already uses one of them is refused.
const (
	ContainerCapture   = "warden-init"
	ContainerBootstrap = "warden-bootstrap"
	ContainerProxy     = "envoy"

	VolumeToken       = "warden-token"
	VolumeRoot        = "warden-root"
	VolumeEnvoyConfig = "envoy-config"

	TokenDir     = "/var/run/secrets/warden"
	RootDir      = "/etc/warden/root"
	EnvoyDir     = "/etc/envoy"
	RootCertKey  = "root-cert.pem"
	BootstrapOut = EnvoyDir + "/envoy.json"

	// NamespaceLabel selects a namespace for injection (Istio's istio-injection=enabled).
	NamespaceLabel = "istio-injection"

	// AnnotationAppProbers holds the application probes the injector rewrote, as JSON
	// keyed by the rewritten path (/app-health/<container>/livez|readyz|startupz): the
	// Warden form of the ISTIO_KUBE_APP_PROBERS value Istio's injector puts on
	// pilot-agent (pkg/kube/inject/app_probe.go DumpAppProbers). wardend reads it from
	// the Pod to build the proxy's application-probe listener.
	AnnotationAppProbers = "warden.io/app-probers"

	// StatusRevision is the revision written into sidecar.istio.io/status.
	StatusRevision = "warden"
)

// Config is what every injected pod shares.
type Config struct {
	// ProxyImage is stock Envoy (envoyproxy/envoy).
	ProxyImage string
	// InitImage carries wardenctl (the wardend image); it runs the capture and bootstrap
	// init containers without a shell.
	InitImage string
	// ImagePullPolicy of the injected containers ("" leaves the Kubernetes default).
	ImagePullPolicy corev1.PullPolicy
	// WardendNamespace is wardend's namespace: never injected, and the name wardend's
	// certificate carries (wardend.<namespace>.svc).
	WardendNamespace string
	// XDSAddress is wardend's xDS address as a pod reaches it.
	XDSAddress string
	// TokenAudience is the audience of the projected service-account token.
	TokenAudience string
	// TokenExpirationSeconds is the projected token's lifetime (the kubelet rotates it at 80%).
	TokenExpirationSeconds int64
	// RootConfigMap is the ConfigMap in every namespace holding the mesh root.
	RootConfigMap string
	// ProxyUID runs Envoy and the bootstrap container; capture excludes its traffic.
	ProxyUID int64
	// StatusPort is the application-probe listener (Istio's 15020).
	StatusPort int32
	// InboundPort is the port the startup probe waits for (virtualInbound, 15006): it is
	// bound only once Envoy has its listeners from wardend.
	InboundPort int32
	// DrainDuration is how long Envoy keeps serving once the pod is told to stop, unless
	// proxy.istio.io/config sets terminationDrainDuration (Istio's default is 5 s).
	DrainDuration time.Duration
	// ListenerDrainTime is Envoy's --drain-time-s: how long the connections of a
	// listener or filter chain that a configuration change replaced keep their old
	// configuration before Envoy closes them (Istio's ProxyConfig.drainDuration, 45 s).
	// Envoy's own default is 600 s: a policy change would reach an open connection only
	// after ten minutes. Zero leaves Envoy's default.
	ListenerDrainTime time.Duration
	// ProxyCPU and ProxyMemory are Envoy's resource requests.
	ProxyCPU, ProxyMemory resource.Quantity
}

// DefaultConfig returns Istio's ports and proxy uid, Envoy 1.40 and 100m/128Mi requests
// (Istio's global.proxy.resources.requests).
func DefaultConfig() Config {
	return Config{
		ProxyImage:             "envoyproxy/envoy:v1.40.0",
		InitImage:              "wardend:dev",
		WardendNamespace:       "warden-system",
		XDSAddress:             "wardend.warden-system.svc:15012",
		TokenAudience:          "warden",
		TokenExpirationSeconds: 3600,
		RootConfigMap:          "warden-ca-root",
		ProxyUID:               1337,
		StatusPort:             15020,
		InboundPort:            15006,
		DrainDuration:          5 * time.Second,
		ListenerDrainTime:      45 * time.Second,
		ProxyCPU:               resource.MustParse("100m"),
		ProxyMemory:            resource.MustParse("128Mi"),
	}
}

// Result is the outcome for one pod.
type Result struct {
	// Pod is the injected pod, or the input unchanged when Injected is false.
	Pod *corev1.Pod
	// Injected says whether the pod got the sidecar.
	Injected bool
	// Reason says why not, when Injected is false.
	Reason string
	// Warnings name each malformed annotation and the default used instead.
	Warnings []string
}

// Required reports whether a pod in namespace ns (labelled nsLabels) is to be injected,
// and why not. It follows Istio's injectRequired with policy "enabled" for namespaces
// labelled istio-injection=enabled (pkg/kube/inject/inject.go).
func Required(cfg Config, ns string, nsLabels map[string]string, pod *corev1.Pod) (bool, string) {
	switch {
	case pod.Spec.HostNetwork:
		return false, "hostNetwork pod (the capture rules would change the node's routing)"
	case ns == "kube-system" || ns == "kube-public" || ns == cfg.WardendNamespace:
		return false, "namespace " + ns + " is never injected"
	}
	if _, ok := pod.Annotations[annotation.SidecarStatus.Name]; ok {
		return false, "already injected (" + annotation.SidecarStatus.Name + " is set)"
	}
	if pod.Labels[label.SidecarInject.Name] == "false" || pod.Annotations[annotation.SidecarInject.Name] == "false" {
		return false, label.SidecarInject.Name + ` is "false"`
	}
	if nsLabels[NamespaceLabel] != "enabled" {
		return false, "namespace " + ns + " is not labelled " + NamespaceLabel + "=enabled"
	}
	return true, ""
}

// Pod returns the injected form of pod (never modifying pod itself). An error means the
// pod cannot be injected and must be refused; warnings never change what is injected
// beyond falling back to the default they name.
func Pod(cfg Config, ns string, nsLabels map[string]string, pod *corev1.Pod) (Result, error) {
	if ok, why := Required(cfg, ns, nsLabels, pod); !ok {
		return Result{Pod: pod, Reason: why}, nil
	}
	var warn []string
	if v, ok := pod.Labels[label.SidecarInject.Name]; ok && v != "true" {
		warn = append(warn, fmt.Sprintf(`label %s=%q: only "true" and "false" are accepted; injecting (the namespace default)`, label.SidecarInject.Name, v))
	}
	if v, ok := pod.Annotations[annotation.SidecarInject.Name]; ok && v != "true" && v != "false" {
		warn = append(warn, fmt.Sprintf(`annotation %s=%q: only "true" and "false" are accepted; injecting (the namespace default)`, annotation.SidecarInject.Name, v))
	}
	if err := checkNames(pod); err != nil {
		return Result{}, err
	}
	out := pod.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}

	captureArgs, w := captureArgs(cfg, pod.Annotations)
	warn = append(warn, w...)
	drain, w := drainDuration(cfg, pod.Annotations)
	warn = append(warn, w...)

	if rewrite, w := rewriteProbes(pod.Annotations); rewrite {
		probers, w2 := rewriteAppProbes(cfg, out)
		warn = append(warn, w2...)
		if probers != "" {
			out.Annotations[AnnotationAppProbers] = probers
		}
	} else {
		warn = append(warn, w...)
	}

	inits := []corev1.Container{captureContainer(cfg, captureArgs), bootstrapContainer(cfg), proxyContainer(cfg, drain)}
	out.Spec.InitContainers = append(inits, out.Spec.InitContainers...)
	out.Spec.Volumes = append(out.Spec.Volumes, volumes(cfg)...)
	// A pod must outlive Envoy's drain: Kubernetes' default grace period is 30 s.
	if grace := int64(drain/time.Second) + 5; out.Spec.TerminationGracePeriodSeconds != nil && *out.Spec.TerminationGracePeriodSeconds < grace {
		warn = append(warn, fmt.Sprintf("terminationGracePeriodSeconds %d is shorter than Envoy's drain of %s: in-flight requests may be cut", *out.Spec.TerminationGracePeriodSeconds, drain))
	}

	if _, ok := out.Labels[label.SecurityTlsMode.Name]; !ok {
		out.Labels[label.SecurityTlsMode.Name] = "istio"
	}
	status, err := json.Marshal(map[string]any{
		"initContainers": []string{ContainerCapture, ContainerBootstrap, ContainerProxy},
		"containers":     nil,
		"volumes":        []string{VolumeToken, VolumeRoot, VolumeEnvoyConfig},
		"revision":       StatusRevision,
	})
	if err != nil {
		return Result{}, err
	}
	out.Annotations[annotation.SidecarStatus.Name] = string(status)
	return Result{Pod: out, Injected: true, Warnings: warn}, nil
}

// checkNames refuses a pod that already uses a name the injector adds: injecting would
// either shadow the app's container or volume or give an invalid pod.
func checkNames(pod *corev1.Pod) error {
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if c.Name == ContainerCapture || c.Name == ContainerBootstrap || c.Name == ContainerProxy {
			return fmt.Errorf("container %q: the name is the injected sidecar's; rename it or set %s: \"false\"", c.Name, label.SidecarInject.Name)
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == VolumeToken || v.Name == VolumeRoot || v.Name == VolumeEnvoyConfig {
			return fmt.Errorf("volume %q: the name is the injected sidecar's; rename it or set %s: \"false\"", v.Name, label.SidecarInject.Name)
		}
	}
	return nil
}

// captureArgs passes Istio's traffic annotations to `wardenctl capture apply`. The
// excluded ports are added to Warden's defaults (the proxy's own ports and wardend's
// xDS port always stay uncaptured, as istio-iptables always excludes 15020/15021/15090).
func captureArgs(cfg Config, ann map[string]string) ([]string, []string) {
	def := captureDefaults()
	args := []string{"capture", "apply", "--proxy-uid=" + strconv.FormatInt(cfg.ProxyUID, 10), "--proxy-gid=" + strconv.FormatInt(cfg.ProxyUID, 10)}
	var warn []string
	bad := func(name, v, why, fallback string) {
		warn = append(warn, fmt.Sprintf("annotation %s=%q: %s; using %s", name, v, why, fallback))
	}

	if v, ok := ann[annotation.SidecarTrafficIncludeInboundPorts.Name]; ok && strings.TrimSpace(v) != "*" {
		if ports, err := portList(v); err != nil {
			bad(annotation.SidecarTrafficIncludeInboundPorts.Name, v, err.Error(), `"*" (every port)`)
		} else if len(ports) == 0 {
			// Istio: an empty include list captures no inbound port; Warden's capture
			// has no such mode, so the list must name a port.
			bad(annotation.SidecarTrafficIncludeInboundPorts.Name, v, "no port given", `"*" (every port)`)
		} else {
			args = append(args, "--inbound-ports="+strings.Join(ports, ","))
		}
	}
	excludeIn := def.excludeIn
	if v, ok := ann[annotation.SidecarTrafficExcludeInboundPorts.Name]; ok {
		if ports, err := portList(v); err != nil {
			bad(annotation.SidecarTrafficExcludeInboundPorts.Name, v, err.Error(), "the default "+strings.Join(def.excludeIn, ","))
		} else {
			excludeIn = mergePorts(excludeIn, ports)
		}
	}
	args = append(args, "--exclude-inbound-ports="+strings.Join(excludeIn, ","))
	excludeOut := def.excludeOut
	if v, ok := ann[annotation.SidecarTrafficExcludeOutboundPorts.Name]; ok {
		if ports, err := portList(v); err != nil {
			bad(annotation.SidecarTrafficExcludeOutboundPorts.Name, v, err.Error(), "the default "+strings.Join(def.excludeOut, ","))
		} else {
			excludeOut = mergePorts(excludeOut, ports)
		}
	}
	args = append(args, "--exclude-outbound-ports="+strings.Join(excludeOut, ","))
	if v, ok := ann[annotation.SidecarTrafficExcludeOutboundIPRanges.Name]; ok {
		if cidrs, err := cidrList(v); err != nil {
			bad(annotation.SidecarTrafficExcludeOutboundIPRanges.Name, v, err.Error(), "no exclusion")
		} else if len(cidrs) > 0 {
			args = append(args, "--exclude-outbound-cidrs="+strings.Join(cidrs, ","))
		}
	}
	if v, ok := ann[annotation.SidecarTrafficIncludeOutboundIPRanges.Name]; ok && strings.TrimSpace(v) != "*" {
		if cidrs, err := cidrList(v); err != nil {
			bad(annotation.SidecarTrafficIncludeOutboundIPRanges.Name, v, err.Error(), `"*" (every destination)`)
		} else {
			args = append(args, "--include-outbound-cidrs="+strings.Join(cidrs, ","))
		}
	}
	return args, warn
}

type captureDefault struct{ excludeIn, excludeOut []string }

// captureDefaults are cmd/wardenctl/capture's DefaultConfig ports, spelled out so that
// the injected command line says what it captures.
func captureDefaults() captureDefault {
	return captureDefault{excludeIn: []string{"15000", "15020", "15021", "15090"}, excludeOut: []string{"15012"}}
}

func portList(v string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := strconv.ParseUint(s, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("%q is not a port", s)
		}
		out = append(out, strconv.FormatUint(p, 10))
	}
	return out, nil
}

func mergePorts(a, b []string) []string {
	out := slices.Clone(a)
	for _, p := range b {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func cidrList(v string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", s)
		}
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("%q: only IPv4 is captured", s)
		}
		out = append(out, p.Masked().String())
	}
	return out, nil
}

// drainDuration reads terminationDrainDuration from proxy.istio.io/config (a YAML
// ProxyConfig, as Istio's injector reads it); other ProxyConfig fields are ignored.
func drainDuration(cfg Config, ann map[string]string) (time.Duration, []string) {
	v, ok := ann[annotation.ProxyConfig.Name]
	if !ok {
		return cfg.DrainDuration, nil
	}
	fallback := fmt.Sprintf("; using terminationDrainDuration %s", cfg.DrainDuration)
	j, err := yaml.YAMLToJSON([]byte(v))
	if err != nil {
		return cfg.DrainDuration, []string{fmt.Sprintf("annotation %s: not YAML: %v%s", annotation.ProxyConfig.Name, err, fallback)}
	}
	var pc meshconfig.ProxyConfig
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(j, &pc); err != nil {
		// protojson randomizes the space after "proto:"; the warning is stable.
		msg := strings.ReplaceAll(err.Error(), "\u00a0", " ")
		return cfg.DrainDuration, []string{fmt.Sprintf("annotation %s: not a ProxyConfig: %s%s", annotation.ProxyConfig.Name, msg, fallback)}
	}
	if pc.TerminationDrainDuration == nil {
		return cfg.DrainDuration, nil
	}
	d := pc.TerminationDrainDuration.AsDuration()
	if d < 0 || d > time.Hour || d%time.Second != 0 {
		return cfg.DrainDuration, []string{fmt.Sprintf("annotation %s: terminationDrainDuration %s must be whole seconds between 0s and 1h%s", annotation.ProxyConfig.Name, d, fallback)}
	}
	return d, nil
}

// rewriteProbes follows Istio's ShouldRewriteAppHTTPProbers (pkg/kube/inject/app_probe.go):
// on unless sidecar.istio.io/rewriteAppHTTPProbers parses as false.
func rewriteProbes(ann map[string]string) (bool, []string) {
	v, ok := ann[annotation.SidecarRewriteAppHTTPProbers.Name]
	if !ok {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return true, []string{fmt.Sprintf("annotation %s=%q: not a boolean; rewriting probes (the default)", annotation.SidecarRewriteAppHTTPProbers.Name, v)}
	}
	return b, nil
}

func captureContainer(cfg Config, args []string) corev1.Container {
	return corev1.Container{
		Name:            ContainerCapture,
		Image:           cfg.InitImage,
		ImagePullPolicy: cfg.ImagePullPolicy,
		Command:         []string{"wardenctl"},
		Args:            args,
		Resources:       smallRequests(),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](0),
			RunAsNonRoot:             ptr.To(false),
			AllowPrivilegeEscalation: ptr.To(false),
			// iptables-restore takes /run/xtables.lock (Istio's istio-init is not read-only either).
			ReadOnlyRootFilesystem: ptr.To(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
		},
	}
}

func bootstrapContainer(cfg Config) corev1.Container {
	// It runs as the proxy's uid, so the bootstrap it writes (mode 0600) is Envoy's.
	return corev1.Container{
		Name:            ContainerBootstrap,
		Image:           cfg.InitImage,
		ImagePullPolicy: cfg.ImagePullPolicy,
		Command:         []string{"wardenctl"},
		// $(VAR) is expanded by the kubelet: no shell in the image.
		Args: []string{"bootstrap",
			"--namespace=$(POD_NAMESPACE)", "--service-account=$(SERVICE_ACCOUNT)", "--pod=$(POD_NAME)", "--ips=$(POD_IP)",
			"--server=" + cfg.XDSAddress, "--wardend-namespace=" + cfg.WardendNamespace,
			"--token-file=" + TokenDir + "/token", "--root-cert=" + RootDir + "/" + RootCertKey,
			"--output=" + BootstrapOut},
		Env: []corev1.EnvVar{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			fieldEnv("POD_IP", "status.podIP"),
			fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
		},
		Resources:       smallRequests(),
		SecurityContext: proxySecurity(cfg),
		VolumeMounts: []corev1.VolumeMount{
			{Name: VolumeToken, MountPath: TokenDir, ReadOnly: true},
			{Name: VolumeRoot, MountPath: RootDir, ReadOnly: true},
			{Name: VolumeEnvoyConfig, MountPath: EnvoyDir},
		},
	}
}

func proxyContainer(cfg Config, drain time.Duration) corev1.Container {
	args := []string{"-c", BootstrapOut, "--disable-hot-restart", "--log-level", "warn"}
	if s := int64(cfg.ListenerDrainTime / time.Second); s > 0 {
		args = append(args, "--drain-time-s", strconv.FormatInt(s, 10))
	}
	c := corev1.Container{
		Name:            ContainerProxy,
		Image:           cfg.ProxyImage,
		ImagePullPolicy: cfg.ImagePullPolicy,
		Args:            args,
		// A native sidecar: started before the app containers, stopped after them.
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Ports: []corev1.ContainerPort{
			{Name: "http-envoy-prom", ContainerPort: 15090, Protocol: corev1.ProtocolTCP},
			{Name: "app-health", ContainerPort: cfg.StatusPort, Protocol: corev1.ProtocolTCP},
		},
		// The kubelet starts the app containers only once this succeeds. virtualInbound
		// comes from wardend's LDS, so the port is bound only once Envoy has its
		// listeners (and, as ADS sends CDS first, its clusters).
		StartupProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(cfg.InboundPort)}},
			PeriodSeconds:    1,
			TimeoutSeconds:   3,
			FailureThreshold: 600,
		},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: cfg.ProxyCPU, corev1.ResourceMemory: cfg.ProxyMemory}},
		SecurityContext: proxySecurity(cfg),
		VolumeMounts: []corev1.VolumeMount{
			{Name: VolumeEnvoyConfig, MountPath: EnvoyDir, ReadOnly: true},
			{Name: VolumeToken, MountPath: TokenDir, ReadOnly: true},
		},
	}
	if drain > 0 {
		// The kubelet stops a native sidecar after the app containers; the sleep keeps
		// Envoy serving the requests still in flight for the drain duration before it
		// gets SIGTERM (stock Envoy exits on SIGTERM without draining).
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: int64(drain / time.Second)}}}
	}
	return c
}

func volumes(cfg Config) []corev1.Volume {
	return []corev1.Volume{
		{Name: VolumeToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: cfg.TokenAudience, ExpirationSeconds: ptr.To(cfg.TokenExpirationSeconds), Path: "token"}}}}}},
		{Name: VolumeRoot, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: cfg.RootConfigMap}}}},
		{Name: VolumeEnvoyConfig, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
	}
}

func proxySecurity(cfg Config) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsUser:                ptr.To(cfg.ProxyUID),
		RunAsGroup:               ptr.To(cfg.ProxyUID),
		RunAsNonRoot:             ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

func smallRequests() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}}
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}
