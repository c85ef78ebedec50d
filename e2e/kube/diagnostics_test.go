package kube

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/xds"
)

// A namespace-wide ALLOW policy in demo (so it applies to web-0) that the API server
// stores (its schema types ipBlocks as strings) and Istio's webhook would refuse
// (pkg/config/validation ValidateAuthorizationPolicy runs security.ValidateIPs on
// ipBlocks). Warden's decoder accepts it; translation for web-0 finds the bad CIDR and
// fails closed (translate/authz: the policy's workloads deny every request).
const badCIDRPolicy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad-cidr, namespace: demo}
spec:
  rules:
  - from:
    - source: {ipBlocks: ["10.0.0.0/33"]}
`

// A DENY policy without rules: Istio's reference for rules says "If not set, the match
// will never occur" (its builder renders rbacPolicyMatchNever), so it is served,
// denying nothing; the decoder warns that it does nothing (watch/validate.go warnSpec).
const denyNoRules = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-no-rules, namespace: demo}
spec:
  action: DENY
`

const (
	cidrField = "spec.rules[0].from[0].source.ipBlocks[0]"
	cidrLog   = `configuration problem: invalid CIDR \"10.0.0.0/33\"`
)

// TestKubernetesDiagnostics proves, against a real kube-apiserver, that a translation
// diagnostic and a decoding warning reach every place issue 12 names: a Warning Event
// on the object (InvalidConfig for the translation error, ConfigWarning for the
// warning; involvedObject kind/namespace/name, the field in the message), one line in
// wardend's log however many inputs follow, the warden_config_errors gauge on the
// metrics address, /debug/syncz (with the affected proxy) and `wardenctl status` (the
// summary line and the affected proxy).
func TestKubernetesDiagnostics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := repoRoot(t)
	work := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	p := begin(t, "API server, deploy/, wardend, one stock Envoy")
	bin, err := harness.FindBinaries(ctx, filepath.Join(work, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := kubeenv.Start(ctx, kubeenv.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	deploy := filepath.Join(root, "deploy")
	if err := env.ApplyFiles(ctx, deploy, filepath.Join(deploy, "sidecar")); err != nil {
		t.Fatal(err)
	}
	kc, err := env.ServiceAccountKubeconfig(ctx, kubeenv.WardendNamespace, kubeenv.WardendServiceAccount, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(work, "wardend.kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	w := startWardend(t, ctx, bin.Wardend, kubeconfig, work)
	const proxyID = "web-0.demo"
	rootPEM, err := env.MeshRootPEM(ctx, kubeenv.WardendNamespace)
	if err != nil {
		t.Fatal(err)
	}
	startEnvoy(t, ctx, env, bin, w, rootPEM, work)
	waitFor(t, ctx, 60*time.Second, proxyID+" SYNCED", func() error { return synced(w.syncz(t, ctx), proxyID) })
	if ds := w.syncz(t, ctx).Diagnostics; len(ds) != 0 {
		t.Fatalf("the deployed mesh already has problems: %v", ds)
	}
	p.end()

	p = begin(t, "a translation error becomes an InvalidConfig Event on its object")
	if err := env.Apply(ctx, []byte(badCIDRPolicy)); err != nil {
		t.Fatalf("the API server refused the policy: %v", err)
	}
	cidr := waitEvent(t, ctx, env, "bad-cidr", "InvalidConfig")
	if cidr.Type != corev1.EventTypeWarning || !strings.HasPrefix(cidr.Message, cidrField+": ") ||
		!strings.Contains(cidr.Message, `"10.0.0.0/33"`) || !strings.Contains(cidr.Message, "deny every request") {
		t.Fatalf("event = %s %q, want a Warning naming %s and the CIDR", cidr.Type, cidr.Message, cidrField)
	}
	// It is translation's: the decoder accepted the object, and syncz names the proxy
	// whose translation reported it.
	sz := w.syncz(t, ctx)
	prob, ok := findProblem(sz, "bad-cidr", cidrField)
	if !ok || !prob.IsError() || !slices.Equal(prob.Proxies, []string{proxyID}) {
		t.Fatalf("syncz problem for bad-cidr = %+v (found %v), want an error affecting %s; all: %v", prob, ok, proxyID, sz.Diagnostics)
	}
	t.Logf("event: %s %s %s/%s: %s", cidr.Type, cidr.Reason, cidr.InvolvedObject.Kind, cidr.InvolvedObject.Name, cidr.Message)
	p.end()

	p = begin(t, "a decoding warning becomes a ConfigWarning Event")
	if err := env.Apply(ctx, []byte(denyNoRules)); err != nil {
		t.Fatalf("the API server refused the policy: %v", err)
	}
	warn := waitEvent(t, ctx, env, "deny-no-rules", "ConfigWarning")
	if warn.Type != corev1.EventTypeWarning || !strings.HasPrefix(warn.Message, "spec.rules: ") ||
		!strings.Contains(warn.Message, "never matches") {
		t.Fatalf("event = %s %q, want a Warning on spec.rules", warn.Type, warn.Message)
	}
	t.Logf("event: %s %s %s/%s: %s", warn.Type, warn.Reason, warn.InvolvedObject.Kind, warn.InvolvedObject.Name, warn.Message)
	p.end()

	p = begin(t, "two unrelated changes later: logged once, counted, in syncz and wardenctl status")
	for i := range 2 {
		before := w.syncz(t, ctx)
		marker := fmt.Sprintf(`{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"namespace":"demo","name":"unrelated-%d"}}`, i)
		if err := env.Apply(ctx, []byte(marker)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, 30*time.Second, fmt.Sprintf("wardend to see unrelated change %d", i), func() error {
			r := w.syncz(t, ctx)
			if r.InputVersion == before.InputVersion {
				return fmt.Errorf("input version still %s", r.InputVersion)
			}
			return synced(r, proxyID)
		})
	}
	// The Envoy reconnecting would be a fresh push round too; it did not, so this is
	// the steady state after three input versions with the problem in them.
	sz = w.syncz(t, ctx)
	if n := strings.Count(w.tail(100000), cidrLog); n != 1 {
		t.Fatalf("wardend logged the bad CIDR %d times, want once:\n%s", n, grepLines(w.tail(100000), "configuration problem"))
	}
	if n := strings.Count(w.tail(100000), "configuration problem: action DENY without rules"); n != 1 {
		t.Fatalf("wardend logged the DENY warning %d times, want once:\n%s", n, grepLines(w.tail(100000), "configuration problem"))
	}
	if _, ok := findProblem(sz, "deny-no-rules", "spec.rules"); !ok {
		t.Fatalf("syncz lacks the DENY warning: %v", sz.Diagnostics)
	}
	if len(sz.Diagnostics) != 2 {
		t.Fatalf("syncz lists %d problems, want 2: %v", len(sz.Diagnostics), sz.Diagnostics)
	}

	metrics, err := httpGet(ctx, "http://"+w.metrics+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, series := range []string{
		`warden_config_errors{kind="AuthorizationPolicy",severity="error"} 1`,
		`warden_config_errors{kind="AuthorizationPolicy",severity="warning"} 1`,
	} {
		if !strings.Contains(string(metrics), series+"\n") {
			t.Fatalf("/metrics lacks %s:\n%s", series, grepLines(string(metrics), "warden_config_errors"))
		}
	}

	out, err := exec.CommandContext(ctx, bin.Wardenctl, "status", "--server", w.debugAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("wardenctl status: %v\n%s", err, out)
	}
	status := string(out)
	summary := "2 configuration problem(s): 1 error(s), 1 warning(s), 1 proxy(ies) affected"
	cidrLine := regexp.MustCompile(`(?m)^  ERROR: .*AuthorizationPolicy demo/bad-cidr: ` + regexp.QuoteMeta(cidrField) +
		`: invalid CIDR "10\.0\.0\.0/33".*\n    proxies: ` + regexp.QuoteMeta(proxyID) + `$`)
	warnLine := regexp.MustCompile(`(?m)^  WARNING: .*AuthorizationPolicy demo/deny-no-rules: spec\.rules: warning: action DENY without rules`)
	if !strings.Contains(status, summary) || !cidrLine.MatchString(status) || !warnLine.MatchString(status) {
		t.Fatalf("wardenctl status lacks the summary %q, the bad CIDR with proxy %s or the DENY warning:\n%s", summary, proxyID, status)
	}
	t.Logf("wardenctl status:\n%s", status)
	p.end()
}

// waitEvent waits for an Event with reason on AuthorizationPolicy demo/name.
func waitEvent(t *testing.T, ctx context.Context, env *kubeenv.Env, name, reason string) corev1.Event {
	t.Helper()
	var ev corev1.Event
	waitFor(t, ctx, 30*time.Second, fmt.Sprintf("a %s Event on AuthorizationPolicy demo/%s", reason, name), func() error {
		list, err := env.Client.CoreV1().Events("demo").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, e := range list.Items {
			o := e.InvolvedObject
			if o.Kind == "AuthorizationPolicy" && o.Namespace == "demo" && o.Name == name && e.Reason == reason {
				ev = e
				return nil
			}
		}
		return fmt.Errorf("%d events, none for %s", len(list.Items), name)
	})
	return ev
}

func findProblem(r xds.SynczResponse, name, field string) (xds.ConfigProblem, bool) {
	for _, d := range r.Diagnostics {
		if d.Kind == "AuthorizationPolicy" && d.Namespace == "demo" && d.Name == name && d.Field == field {
			return d, true
		}
	}
	return xds.ConfigProblem{}, false
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
