package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wardenmesh/warden/e2e/cluster"
)

// Kubelet runs a Pod spec in an emulator pod as a kubelet would: volumes first, then
// the init containers in order (each to completion; a native sidecar, restartPolicy
// Always, is started and must pass its startupProbe before the next one starts), then
// the app containers. Stop follows the kubelet's order for native sidecars: the app
// containers first, then the sidecars in reverse order, each after its preStop hook.
//
// There is no mount namespace: a volume is a folder in the pod's directory, and a
// container's mount paths in its command and arguments are rewritten to that folder
// (so Envoy's bootstrap names the folder's token file, as it would name the mount).
// Images do not exist either: Images and Commands say which host program a
// container runs. A container that exits is not restarted.
type Kubelet struct {
	// Images maps a container image to the program its entrypoint runs, for containers
	// without a command (Envoy's image -> stock Envoy).
	Images map[string]string
	// Commands maps a container's command[0] to a host program (wardenctl -> bin/wardenctl).
	Commands map[string]string
	// Token returns the projected service-account token of src for pod.
	Token func(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) ([]byte, error)
	// ConfigMap returns the data of ConfigMap namespace/name (a configMap volume).
	ConfigMap func(ctx context.Context, namespace, name string) (map[string]string, error)
	// ProbeTimeout bounds the wait for a startupProbe (default: its failureThreshold ×
	// periodSeconds, as the kubelet gives up then).
	ProbeTimeout time.Duration
}

// KubePod is a Pod spec running in an emulator pod.
type KubePod struct {
	// Spec is the Pod as run (status.podIP set).
	Spec     *corev1.Pod
	net      *cluster.Pod
	sidecars []*kubeContainer // native sidecars, in start order
	apps     []*kubeContainer
	// Events lists what the kubelet did, in order ("started envoy", "startupProbe envoy passed", ...).
	Events []string
}

type kubeContainer struct {
	c    corev1.Container
	proc *cluster.Process
}

// Container returns the running process of the container named name (nil if none).
func (k *KubePod) Container(name string) *cluster.Process {
	for _, c := range slices.Concat(k.sidecars, k.apps) {
		if c.c.Name == name {
			return c.proc
		}
	}
	return nil
}

func (k *KubePod) event(format string, args ...any) {
	k.Events = append(k.Events, fmt.Sprintf(format, args...))
}

// Run starts pod in the emulator pod np and returns once its app containers are
// started. On error, what was started is stopped.
func (kl *Kubelet) Run(ctx context.Context, np *cluster.Pod, pod *corev1.Pod) (*KubePod, error) {
	spec := pod.DeepCopy()
	spec.Status.PodIP = np.IP()
	spec.Status.PodIPs = []corev1.PodIP{{IP: np.IP()}}
	kp := &KubePod{Spec: spec, net: np}
	id := spec.Namespace + "/" + spec.Name
	vols, err := kl.volumes(ctx, np, spec)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", id, err)
	}
	fail := func(err error) (*KubePod, error) {
		kp.kill()
		return nil, fmt.Errorf("pod %s: %w", id, err)
	}
	for _, c := range spec.Spec.InitContainers {
		argv, env, err := kl.command(spec, c, vols)
		if err != nil {
			return fail(err)
		}
		uid := runAsUser(spec, c)
		proc, err := np.Start(c.Name, uid, env, argv...)
		if err != nil {
			return fail(err)
		}
		kp.event("started init container %s", c.Name)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			kp.sidecars = append(kp.sidecars, &kubeContainer{c: c, proc: proc})
			if c.StartupProbe != nil {
				if err := kl.waitStartup(ctx, np, c, proc); err != nil {
					return fail(err)
				}
				kp.event("startupProbe %s passed", c.Name)
			}
			continue
		}
		select {
		case <-proc.Exited():
		case <-ctx.Done():
			_ = proc.Stop()
			return fail(ctx.Err())
		}
		if err := proc.Err(); err != nil {
			return fail(fmt.Errorf("init container %s failed: %v:\n%s", c.Name, err, proc.LogTail(20)))
		}
		kp.event("init container %s completed", c.Name)
	}
	for _, c := range spec.Spec.Containers {
		argv, env, err := kl.command(spec, c, vols)
		if err != nil {
			return fail(err)
		}
		proc, err := np.Start(c.Name, runAsUser(spec, c), env, argv...)
		if err != nil {
			return fail(err)
		}
		kp.apps = append(kp.apps, &kubeContainer{c: c, proc: proc})
		kp.event("started container %s", c.Name)
	}
	return kp, nil
}

// Stop stops the pod as the kubelet does when it is deleted: every app container gets
// its preStop hook and SIGTERM, and the kubelet waits for them to exit; then each
// native sidecar, in reverse start order, gets its preStop hook (Envoy's drain sleep)
// and SIGTERM. Whatever outlives terminationGracePeriodSeconds is killed.
func (k *KubePod) Stop(ctx context.Context) {
	grace := 30 * time.Second
	if g := k.Spec.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	deadline := time.Now().Add(grace)
	done := make(chan struct{}, len(k.apps))
	for _, c := range k.apps {
		go func() { c.terminate(ctx, deadline); done <- struct{}{} }()
	}
	for range k.apps {
		<-done
	}
	k.event("app containers stopped")
	for i := len(k.sidecars) - 1; i >= 0; i-- {
		k.sidecars[i].terminate(ctx, deadline)
		k.event("sidecar %s stopped", k.sidecars[i].c.Name)
	}
}

// kill ends every process at once (a failed start).
func (k *KubePod) kill() {
	for _, c := range slices.Concat(k.apps, k.sidecars) {
		_ = c.proc.Stop()
	}
}

// terminate runs the container's preStop hook, sends SIGTERM and waits for the exit
// until deadline, then kills.
func (c *kubeContainer) terminate(ctx context.Context, deadline time.Time) {
	select {
	case <-c.proc.Exited():
		return
	default:
	}
	if l := c.c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		d := time.Duration(l.PreStop.Sleep.Seconds) * time.Second
		if left := time.Until(deadline); d > left {
			d = left
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-c.proc.Exited():
		}
		t.Stop()
	}
	_ = c.proc.Signal(syscall.SIGTERM)
	t := time.NewTimer(max(time.Until(deadline), 0))
	defer t.Stop()
	select {
	case <-c.proc.Exited():
	case <-t.C:
	case <-ctx.Done():
	}
	_ = c.proc.Stop() // kills whatever is left in the process group
}

// waitStartup runs the container's startupProbe (tcpSocket only) every periodSeconds
// until it passes, the container exits or failureThreshold probes failed.
func (kl *Kubelet) waitStartup(ctx context.Context, np *cluster.Pod, c corev1.Container, proc *cluster.Process) error {
	p := c.StartupProbe
	if p.TCPSocket == nil {
		return fmt.Errorf("container %s startupProbe: only tcpSocket probes are emulated", c.Name)
	}
	port := p.TCPSocket.Port.IntValue()
	if port == 0 {
		for _, cp := range c.Ports {
			if cp.Name == p.TCPSocket.Port.StrVal {
				port = int(cp.ContainerPort)
			}
		}
	}
	if port == 0 {
		return fmt.Errorf("container %s startupProbe.tcpSocket.port %q: no such port", c.Name, p.TCPSocket.Port.String())
	}
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	limit := kl.ProbeTimeout
	if limit == 0 {
		limit = time.Duration(max(p.FailureThreshold, 3)) * period
	}
	addr := net.JoinHostPort(np.IP(), strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if p.InitialDelaySeconds > 0 {
		select {
		case <-time.After(time.Duration(p.InitialDelaySeconds) * time.Second):
		case <-ctx.Done():
		}
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	var last error
	for {
		// The kubelet probes from the node, as this dial from the host does.
		conn, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		last = err
		select {
		case <-proc.Exited():
			return fmt.Errorf("container %s exited before its startupProbe passed: %v:\n%s", c.Name, proc.Err(), proc.LogTail(20))
		case <-ctx.Done():
			return fmt.Errorf("container %s startupProbe tcp %s did not pass in %s: %v:\n%s", c.Name, addr, limit, last, proc.LogTail(20))
		case <-tick.C:
		}
	}
}

// volumes makes one folder per volume under <pod dir>/volumes and fills it: an
// emptyDir is world-writable (as the kubelet makes it), a projected service-account
// token is written mode 0600 for the uid of the containers that mount it, a configMap
// gets one file per key.
func (kl *Kubelet) volumes(ctx context.Context, np *cluster.Pod, pod *corev1.Pod) (map[string]string, error) {
	out := map[string]string{}
	base := filepath.Join(np.Dir(), "volumes")
	if err := os.RemoveAll(base); err != nil {
		return nil, err
	}
	for i, v := range pod.Spec.Volumes {
		dir := filepath.Join(base, v.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		out[v.Name] = dir
		field := fmt.Sprintf("spec.volumes[%d] (%s)", i, v.Name)
		switch {
		case v.EmptyDir != nil:
			if err := os.Chmod(dir, 0o777); err != nil {
				return nil, err
			}
		case v.ConfigMap != nil:
			if kl.ConfigMap == nil {
				return nil, fmt.Errorf("%s: configMap volumes need Kubelet.ConfigMap", field)
			}
			data, err := kl.ConfigMap(ctx, pod.Namespace, v.ConfigMap.Name)
			if err != nil {
				return nil, fmt.Errorf("%s: configMap %s: %w", field, v.ConfigMap.Name, err)
			}
			for k, val := range data {
				if err := os.WriteFile(filepath.Join(dir, k), []byte(val), 0o644); err != nil {
					return nil, err
				}
			}
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken == nil {
					return nil, fmt.Errorf("%s: only serviceAccountToken projections are emulated", field)
				}
				if kl.Token == nil {
					return nil, fmt.Errorf("%s: serviceAccountToken needs Kubelet.Token", field)
				}
				tok, err := kl.Token(ctx, pod, src.ServiceAccountToken)
				if err != nil {
					return nil, fmt.Errorf("%s: token: %w", field, err)
				}
				path := filepath.Join(dir, src.ServiceAccountToken.Path)
				if err := os.WriteFile(path, tok, 0o600); err != nil {
					return nil, err
				}
				// The kubelet gives the token to the containers' user when they share one.
				if uid, ok := mountersUID(pod, v.Name); ok {
					if err := os.Chown(path, uid, uid); err != nil {
						return nil, err
					}
				}
			}
		default:
			return nil, fmt.Errorf("%s: only emptyDir, configMap and projected volumes are emulated", field)
		}
	}
	return out, nil
}

// mountersUID is the one uid every container mounting volume runs as.
func mountersUID(pod *corev1.Pod, volume string) (int, bool) {
	uid, found := -1, false
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		for _, m := range c.VolumeMounts {
			if m.Name != volume {
				continue
			}
			u := runAsUser(pod, c)
			if found && u != uid {
				return 0, false
			}
			uid, found = u, true
		}
	}
	return uid, found
}

func runAsUser(pod *corev1.Pod, c corev1.Container) int {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return int(*c.SecurityContext.RunAsUser)
	}
	if sc := pod.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
		return int(*sc.RunAsUser)
	}
	return 0
}

// command returns the container's argv, with $(VAR) expanded from its environment and
// its mount paths rewritten to the volumes' folders, and that environment.
func (kl *Kubelet) command(pod *corev1.Pod, c corev1.Container, vols map[string]string) ([]string, []string, error) {
	vars := map[string]string{}
	var env []string
	for i, e := range c.Env {
		val := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return nil, nil, fmt.Errorf("container %s env[%d] (%s): only fieldRef is emulated", c.Name, i, e.Name)
			}
			v, err := fieldRef(pod, e.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, nil, fmt.Errorf("container %s env[%d] (%s): %w", c.Name, i, e.Name, err)
			}
			val = v
		} else {
			val = expand(val, vars)
		}
		vars[e.Name] = val
		env = append(env, e.Name+"="+val)
	}
	var argv []string
	if len(c.Command) > 0 {
		prog, ok := kl.Commands[c.Command[0]]
		if !ok {
			return nil, nil, fmt.Errorf("container %s command %q: no host program for it", c.Name, c.Command[0])
		}
		argv = append([]string{prog}, c.Command[1:]...)
	} else {
		prog, ok := kl.Images[c.Image]
		if !ok {
			return nil, nil, fmt.Errorf("container %s image %q: no host program for its entrypoint", c.Name, c.Image)
		}
		argv = []string{prog}
	}
	argv = append(argv, c.Args...)
	// Longer mount paths first, so /a/b wins over /a.
	mounts := slices.Clone(c.VolumeMounts)
	slices.SortFunc(mounts, func(a, b corev1.VolumeMount) int { return len(b.MountPath) - len(a.MountPath) })
	for i := range argv {
		if i > 0 {
			argv[i] = expand(argv[i], vars)
		}
		for _, m := range mounts {
			dir, ok := vols[m.Name]
			if !ok {
				return nil, nil, fmt.Errorf("container %s volumeMount %s: no such volume", c.Name, m.Name)
			}
			argv[i] = rewritePath(argv[i], m.MountPath, dir)
		}
	}
	return argv, env, nil
}

// rewritePath replaces mount (as a whole path prefix) with dir in arg.
func rewritePath(arg, mount, dir string) string {
	mount = strings.TrimRight(mount, "/")
	var b strings.Builder
	for {
		i := strings.Index(arg, mount)
		if i < 0 {
			b.WriteString(arg)
			return b.String()
		}
		end := i + len(mount)
		startOK := i == 0 || arg[i-1] == '=' || arg[i-1] == ',' || arg[i-1] == ':'
		endOK := end == len(arg) || arg[end] == '/' || arg[end] == ','
		b.WriteString(arg[:i])
		if startOK && endOK {
			b.WriteString(dir)
		} else {
			b.WriteString(mount)
		}
		arg = arg[end:]
	}
}

// fieldRef resolves the downward-API fields the kubelet offers as env values.
func fieldRef(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.serviceAccountName":
		sa := pod.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		return sa, nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	return "", errors.New("fieldRef " + path + " is not emulated")
}

// expand is the kubelet's $(VAR) expansion: a defined variable is replaced, $$ is a
// literal $, anything else is left as written.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
