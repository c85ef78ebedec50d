package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/e2e/cluster"
	"github.com/wardenmesh/warden/inject"
)

// AppImage is the image name of the test app's container in a Pod spec the harness
// builds; the emulator's kubelet runs bin/warden-e2e-app for it.
const AppImage = "warden-e2e-app"

// InjectConfig is the injector configuration of this mesh's pods: Istio's defaults,
// with wardend's xDS address as the pods reach it and a 1 s listener drain. The images name no real image: the
// kubelet (NewKubelet) maps them to the host's programs.
func (m *Mesh) InjectConfig() inject.Config {
	cfg := inject.DefaultConfig()
	cfg.XDSAddress = m.XDSAddr
	cfg.ProxyUID = ProxyUID
	// As the harness's own Envoys: a replaced listener's connections drain in 1 s, so
	// a scenario step waits for the new configuration on every connection that long.
	cfg.ListenerDrainTime = time.Second
	return cfg
}

// NewKubelet returns the kubelet that runs this mesh's injected pods: wardenctl and
// the test app from bin/, Envoy's image as stock Envoy, the directory-mode token
// (signed with the state directory's key for the pod's identity, labels and IP) as
// the projected token, and the state directory's root as the root ConfigMap. Kubernetes
// mode replaces Token and ConfigMap.
func (m *Mesh) NewKubelet() (*Kubelet, error) {
	ctl, err := cluster.StageForProxy(m.Bin.Wardenctl)
	if err != nil {
		return nil, fmt.Errorf("stage wardenctl: %w", err)
	}
	cfg := m.InjectConfig()
	return &Kubelet{
		Images:   map[string]string{cfg.ProxyImage: m.Bin.Envoy},
		Commands: map[string]string{"wardenctl": ctl, AppImage: m.Bin.App},
		Token:    m.dirToken,
		// A kubelet waits up to failureThreshold × period (10 min for Envoy); a run
		// whose Envoy gets no listeners from wardend fails sooner.
		ProbeTimeout: 60 * time.Second,
		ConfigMap: func(_ context.Context, _, name string) (map[string]string, error) {
			if name != cfg.RootConfigMap {
				return nil, fmt.Errorf("no ConfigMap %s", name)
			}
			ca, err := certs.LoadOrCreateCA(m.StateDir, "cluster.local", time.Now)
			if err != nil {
				return nil, err
			}
			return map[string]string{inject.RootCertKey: string(ca.RootPEM())}, nil
		},
	}, nil
}

// dirToken signs a directory-mode token for pod with `wardenctl token`.
func (m *Mesh) dirToken(ctx context.Context, pod *corev1.Pod, _ *corev1.ServiceAccountTokenProjection) ([]byte, error) {
	var labels []string
	for k, v := range pod.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	f, err := os.CreateTemp(m.StateDir, ".token-*")
	if err != nil {
		return nil, err
	}
	f.Close()
	defer os.Remove(f.Name())
	out, err := exec.CommandContext(ctx, m.Bin.Wardenctl, "token", "--namespace", pod.Namespace, "--service-account", sa,
		"--pod", pod.Name, "--labels", strings.Join(labels, ","), "--ips", pod.Status.PodIP,
		"--state-dir", m.StateDir, "-o", f.Name()).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wardenctl token: %v: %s", err, out)
	}
	return os.ReadFile(f.Name())
}

// BasePod is the Pod spec of o's workload before injection, as a Deployment would
// create it (with the template's annotations): one container "app" running the test
// app on o's ports. The app's configuration file is written into the pod's directory.
func (m *Mesh) BasePod(p *Pod, o PodOptions, annotations map[string]string) (*corev1.Pod, error) {
	args := []string{"serve", "-http-ports", joinPorts(o.HTTPPorts), "-tcp-ports", joinPorts(o.TCPPorts)}
	if o.AppConfig != nil {
		b, err := json.Marshal(o.AppConfig)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(p.Dir(), "app.json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return nil, err
		}
		args = append(args, "-config", path)
	}
	var ports []corev1.ContainerPort
	for _, pn := range append(append([]uint32(nil), o.HTTPPorts...), o.TCPPorts...) {
		ports = append(ports, corev1.ContainerPort{ContainerPort: int32(pn), Protocol: corev1.ProtocolTCP})
	}
	sa := o.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Opts.Namespace, Name: p.Opts.Name, Labels: o.Labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			Containers:         []corev1.Container{{Name: "app", Image: AppImage, Command: []string{AppImage}, Args: args, Ports: ports}},
		},
	}, nil
}

// Inject returns the injected form of o's Pod spec (BasePod through inject.Pod, in a
// namespace labelled for injection).
func (m *Mesh) Inject(p *Pod, o PodOptions, annotations map[string]string) (*corev1.Pod, error) {
	base, err := m.BasePod(p, o, annotations)
	if err != nil {
		return nil, err
	}
	res, err := inject.Pod(m.InjectConfig(), base.Namespace, map[string]string{inject.NamespaceLabel: "enabled"}, base)
	if err != nil {
		return nil, fmt.Errorf("inject pod %s: %w", p.ID(), err)
	}
	if !res.Injected {
		return nil, fmt.Errorf("inject pod %s: not injected: %s", p.ID(), res.Reason)
	}
	for _, w := range res.Warnings {
		m.log.Warn("injection", "pod", p.ID(), "warning", w)
	}
	return res.Pod, nil
}

// startInjected runs o.Injected with the mesh's kubelet.
func (m *Mesh) startInjected(ctx context.Context, p *Pod) error {
	if m.Kubelet == nil {
		kl, err := m.NewKubelet()
		if err != nil {
			return err
		}
		m.Kubelet = kl
	}
	kp, err := m.Kubelet.Run(ctx, p.Pod, p.Opts.Injected)
	if err != nil {
		return err
	}
	p.Kube = kp
	p.Envoy = kp.Container(inject.ContainerProxy)
	p.App = kp.Container("app")
	return nil
}
