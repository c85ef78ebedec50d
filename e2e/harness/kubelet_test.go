package harness

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wardenmesh/warden/inject"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "x", "POD_IP": "10.0.0.1"}
	for in, want := range map[string]string{
		"--ips=$(POD_IP)": "--ips=10.0.0.1",
		"$(A)$(A)":        "xx",
		"$$(A)":           "$(A)", // escaped, as the kubelet does
		"$(UNSET)":        "$(UNSET)",
		"$(A":             "$(A",
		"a$b":             "a$b",
		"end$":            "end$",
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRewritePath(t *testing.T) {
	for _, c := range []struct{ arg, mount, want string }{
		{"--token-file=/var/run/secrets/warden/token", "/var/run/secrets/warden", "--token-file=/pod/v/token"},
		{"/etc/envoy/envoy.json", "/etc/envoy", "/pod/v/envoy.json"},
		{"/etc/envoy", "/etc/envoy/", "/pod/v"},
		{"/etc/envoyx/a", "/etc/envoy", "/etc/envoyx/a"},       // not a path prefix
		{"--x=/a/etc/envoy", "/etc/envoy", "--x=/a/etc/envoy"}, // not at a path's start
	} {
		if got := rewritePath(c.arg, c.mount, "/pod/v"); got != c.want {
			t.Errorf("rewritePath(%q, %q) = %q, want %q", c.arg, c.mount, got, c.want)
		}
	}
}

// TestKubeletCommand resolves the injected bootstrap container as the kubelet would:
// its program, the pod fields in its $(VAR) arguments, its mount paths in the volumes'
// folders, and the proxy's uid.
func TestKubeletCommand(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "web-0"},
		Spec: corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	res, err := inject.Pod(inject.DefaultConfig(), "demo", map[string]string{inject.NamespaceLabel: "enabled"}, pod)
	if err != nil || !res.Injected {
		t.Fatalf("inject: %v %s", err, res.Reason)
	}
	spec := res.Pod
	spec.Status.PodIP = "10.1.2.3"
	kl := &Kubelet{Commands: map[string]string{"wardenctl": "/bin/wardenctl"}}
	vols := map[string]string{inject.VolumeToken: "/p/tok", inject.VolumeRoot: "/p/root", inject.VolumeEnvoyConfig: "/p/envoy"}
	var boot corev1.Container
	for _, c := range spec.Spec.InitContainers {
		if c.Name == inject.ContainerBootstrap {
			boot = c
		}
	}
	argv, env, err := kl.command(spec, boot, vols)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/bin/wardenctl", "--namespace=demo", "--service-account=web", "--pod=web-0", "--ips=10.1.2.3",
		"--token-file=/p/tok/token", "--root-cert=/p/root/" + inject.RootCertKey, "--output=/p/envoy/envoy.json"} {
		if !slices.Contains(argv, want) {
			t.Errorf("argv %v lacks %s", argv, want)
		}
	}
	if !slices.Contains(env, "POD_IP=10.1.2.3") {
		t.Errorf("env %v lacks POD_IP", env)
	}
	if uid := runAsUser(spec, boot); uid != 1337 {
		t.Errorf("bootstrap runs as %d, want 1337", uid)
	}
	if _, _, err := kl.command(spec, spec.Spec.InitContainers[2], vols); err == nil || !strings.Contains(err.Error(), "image") {
		t.Errorf("envoy without an image mapping: err %v, want one naming the image", err)
	}
}
