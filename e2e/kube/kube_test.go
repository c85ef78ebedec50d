package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wardenmesh/warden/e2e/cluster"
	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/xds"
)

// phase logs how long each step took.
type phase struct {
	t     *testing.T
	name  string
	start time.Time
}

func begin(t *testing.T, name string) *phase { return &phase{t: t, name: name, start: time.Now()} }

func (p *phase) end() { p.t.Logf("== %s: %s", p.name, time.Since(p.start).Round(time.Millisecond)) }

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestKubernetesMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root := repoRoot(t)
	work := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	p := begin(t, "build wardend, wardenctl")
	bin, err := harness.FindBinaries(ctx, filepath.Join(work, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	p.end()

	p = begin(t, "start etcd and kube-apiserver")
	env, err := kubeenv.Start(ctx, kubeenv.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	p.end()

	p = begin(t, "server-side apply every manifest in deploy/")
	deploy := filepath.Join(root, "deploy")
	if err := env.ApplyFiles(ctx, deploy, filepath.Join(deploy, "sidecar")); err != nil {
		t.Fatal(err)
	}
	p.end()

	p = begin(t, "start wardend with its ServiceAccount's token")
	kc, err := env.ServiceAccountKubeconfig(ctx, kubeenv.WardendNamespace, kubeenv.WardendServiceAccount, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(work, "wardend.kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	w := startWardend(t, ctx, bin.Wardend, kubeconfig, work)
	sec, err := env.Client.CoreV1().Secrets("warden-system").Get(ctx, "warden-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("wardend did not create its CA Secret: %v", err)
	}
	for _, k := range []string{"root-cert.pem", "root-key.pem", "token-key.pem"} {
		if len(sec.Data[k]) == 0 {
			t.Fatalf("Secret warden-ca lacks %s", k)
		}
	}
	p.end()

	p = begin(t, "connect a stock Envoy with a pod-bound token (TokenReview)")
	const proxyID = "web-0.demo"
	rootPEM, err := env.MeshRootPEM(ctx, kubeenv.WardendNamespace)
	if err != nil {
		t.Fatal(err)
	}
	startEnvoy(t, ctx, env, bin, w, rootPEM, work)
	waitFor(t, ctx, 60*time.Second, proxyID+" SYNCED", func() error { return synced(w.syncz(t, ctx), proxyID) })
	p.end()

	p = begin(t, "create, update, delete every watched kind")
	for _, k := range watchedKinds() {
		for _, step := range k.steps(env) {
			before := w.syncz(t, ctx).InputVersion
			if err := step.do(ctx); err != nil {
				t.Fatalf("%s %s: %v", step.name, k.kind, err)
			}
			waitFor(t, ctx, 30*time.Second, fmt.Sprintf("wardend to see %s %s", step.name, k.kind), func() error {
				if v := w.syncz(t, ctx).InputVersion; v == before {
					return fmt.Errorf("input version still %s", v)
				}
				return nil
			})
			waitFor(t, ctx, 30*time.Second, fmt.Sprintf("%s SYNCED after %s %s", proxyID, step.name, k.kind), func() error {
				return synced(w.syncz(t, ctx), proxyID)
			})
		}
	}
	p.end()

	p = begin(t, "a policy reaches the Envoy's listeners")
	ldsBefore := intended(w.syncz(t, ctx), proxyID, "LDS")
	if err := env.Apply(ctx, []byte(strictDemo)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 30*time.Second, "STRICT PeerAuthentication in the Envoy's LDS", func() error {
		r := w.syncz(t, ctx)
		if v := intended(r, proxyID, "LDS"); v == ldsBefore {
			return fmt.Errorf("LDS still at %s", v)
		}
		return synced(r, proxyID)
	})
	p.end()

	p = begin(t, "restart the API server mid-run")
	before := w.syncz(t, ctx)
	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 60*time.Second, "wardend's informers to lose the API server", func() error {
		if strings.Contains(w.tail(400), "connection refused") {
			return nil
		}
		return fmt.Errorf("no watch error in wardend's log yet")
	})
	down := w.syncz(t, ctx)
	if down.InputVersion != before.InputVersion || pushes(down, proxyID) != pushes(before, proxyID) {
		t.Fatalf("while the API server was down: input %s -> %s, pushes %d -> %d",
			before.InputVersion, down.InputVersion, pushes(before, proxyID), pushes(down, proxyID))
	}
	if _, err := w.get(ctx, "/readyz"); err != nil {
		t.Fatalf("wardend stopped serving while the API server was down: %v", err)
	}
	if err := env.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	// A change made after the restart proves the informers are back; nothing else moved.
	marker := `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"namespace":"warden-system","name":"after-restart"}}`
	if err := env.Apply(ctx, []byte(marker)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 60*time.Second, "wardend to see a change made after the restart", func() error {
		if v := w.syncz(t, ctx).InputVersion; v == before.InputVersion {
			return fmt.Errorf("input version still %s", v)
		}
		return nil
	})
	after := w.syncz(t, ctx)
	for _, typ := range []string{"CDS", "LDS", "EDS", "RDS", "SDS"} {
		if b, a := intended(before, proxyID, typ), intended(after, proxyID, typ); a != b {
			t.Errorf("%s of %s changed across the restart: %s -> %s", typ, proxyID, b, a)
		}
	}
	if err := synced(after, proxyID); err != nil {
		t.Fatal(err)
	}
	p.end()

	p = begin(t, "a rejected object gets a Warning Event")
	if err := env.Apply(ctx, []byte(badPolicy)); err != nil {
		t.Fatalf("the API server refused the object Warden should reject: %v", err)
	}
	var ev corev1.Event
	waitFor(t, ctx, 30*time.Second, "an InvalidConfig Event on AuthorizationPolicy demo/deny-nothing", func() error {
		list, err := env.Client.CoreV1().Events("demo").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == "AuthorizationPolicy" && e.InvolvedObject.Name == "deny-nothing" && e.Reason == "InvalidConfig" {
				ev = e
				return nil
			}
		}
		return fmt.Errorf("%d events, none for deny-nothing", len(list.Items))
	})
	if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, "spec.rules[0].from[0].source") {
		t.Fatalf("event = %s %q", ev.Type, ev.Message)
	}
	t.Logf("event: %s %s: %s", ev.Type, ev.Reason, ev.Message)
	p.end()

	p = begin(t, "the kind sample (chapter 9) applies and is accepted")
	prev := w.syncz(t, ctx).InputVersion
	if err := env.ApplyFiles(ctx, filepath.Join(deploy, "kind", "sample")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 30*time.Second, "wardend to load the sample", func() error {
		r := w.syncz(t, ctx)
		if r.InputVersion == prev {
			return fmt.Errorf("input version still %s", prev)
		}
		for _, d := range r.Diagnostics {
			if d.IsError() && d.Namespace != "demo" {
				t.Fatalf("the sample is rejected: %s", d)
			}
		}
		return nil
	})
	p.end()
}

func intended(r xds.SynczResponse, id, typ string) string {
	pr, _ := proxyStatus(r, id)
	return pr.Types[typ].Intended
}

const strictDemo = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: demo}
spec:
  mtls: {mode: STRICT}
`

// The API server accepts it (its schema allows it); Istio's webhook, and Warden, do not.
const badPolicy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-nothing, namespace: demo}
spec:
  action: DENY
  rules: [{from: [{source: {}}]}]
`

// startEnvoy creates the Pod web-0 (service account web) in demo, gets a token bound to
// it for audience "warden", and runs stock Envoy with `wardenctl bootstrap --token-file`.
func startEnvoy(t *testing.T, ctx context.Context, env *kubeenv.Env, bin harness.Binaries, w *wardend, rootPEM []byte, work string) {
	t.Helper()
	pod, err := env.WritePod(ctx, kubeenv.Pod{Namespace: "demo", Name: "web-0", IP: "10.250.0.10", ServiceAccount: "web",
		Labels: map[string]string{"app": "web"}, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := env.Token(ctx, "demo", "web", []string{kubeenv.ProxyTokenAudience}, pod, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tokFile, rootFile, boot := filepath.Join(work, "token"), filepath.Join(work, "root-cert.pem"), filepath.Join(work, "envoy.json")
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rootFile, rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin.Wardenctl, "bootstrap", "--namespace", "demo", "--service-account", "web",
		"--pod", "web-0", "--ips", "10.250.0.10", "--server", w.xdsAddr, "--stats-port", "0", "--token-file", tokFile, "--root-cert", rootFile,
		"--output", boot).CombinedOutput()
	if err != nil {
		t.Fatalf("wardenctl bootstrap: %v: %s", err, out)
	}
	if err := freeAdminPort(boot); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(work, "envoy.log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin.Envoy, "-c", boot, "--disable-hot-restart", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); lf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("--- envoy log ---\n%s", data)
		}
	})
}

// freeAdminPort lets the kernel pick Envoy's admin port: this Envoy runs on the host.
func freeAdminPort(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var b map[string]any
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	admin, _ := b["admin"].(map[string]any)
	addr, _ := admin["address"].(map[string]any)
	sock, _ := addr["socketAddress"].(map[string]any)
	if sock == nil {
		return fmt.Errorf("bootstrap %s has no admin socket address", path)
	}
	sock["portValue"] = 0
	out, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}
