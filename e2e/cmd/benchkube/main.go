// Command benchkube measures wardend in Kubernetes mode at scale, and optionally istiod
// side by side (-istiod): a real kube-apiserver and etcd (e2e/kubeenv), the mesh created
// through the API (namespaces; per pod a ServiceAccount, Pod, Service and EndpointSlice;
// namespace AuthorizationPolicies each selecting one workload; a mesh-wide DENY policy;
// mesh-wide STRICT), then simulated sidecars (e2e/xdsload) whose streams open at -rate
// per second and ACK every response. wardend's proxies present pod-bound tokens from the
// TokenRequest API over TLS; istiod's connect to its plaintext 15010 with the node
// metadata an istio-agent sends.
//
// It prints one column per control plane: cold sync, a scoped change, a mesh-wide change,
// certificate rotation, a reconnect storm, resident memory and CPU seconds per change,
// and writes heap profiles into -out.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wardenmesh/warden/e2e/kubeenv"
)

func main() {
	var s Size
	flag.IntVar(&s.Proxies, "proxies", 1000, "simulated sidecars (one Pod, Service and EndpointSlice each)")
	flag.IntVar(&s.Namespaces, "namespaces", 100, "namespaces the pods are spread over")
	flag.IntVar(&s.Policies, "policies", 5000, "namespace AuthorizationPolicies, each selecting one workload")
	rate := flag.Int("rate", 100, "streams opened per second")
	delta := flag.Bool("delta", false, "incremental xDS instead of state of the world")
	wardend := flag.String("wardend", "bin/wardend", "wardend binary")
	istiod := flag.String("istiod", "", "istiod's pilot-discovery binary: also measure istiod (make bench-istiod builds it)")
	out := flag.String("out", "bin/bench-kube", "folder for heap profiles and the control planes' logs")
	workers := flag.Int("workers", 16, "parallel API requests while creating the mesh")
	certTTL := flag.Duration("cert-ttl", 0, "wardend's --workload-cert-ttl; 0: long enough that rotation (at half life) comes after the changes")
	timeout := flag.Duration("timeout", 45*time.Minute, "give up after this long")
	flag.Parse()
	if _, err := run(os.Stdout, s, *rate, *delta, *wardend, *istiod, *out, *workers, *certTTL, *timeout); err != nil {
		log.Fatal(err)
	}
}

// run measures each control plane over one mesh, prints the table to w and returns
// the figures.
func run(w io.Writer, s Size, rate int, delta bool, wardend, istiod, out string, workers int, certTTL, timeout time.Duration) ([]*result, error) {
	if s.Proxies < 1 || s.Namespaces < 1 || s.Namespaces > s.Proxies || rate < 1 || s.Policies < 1 {
		return nil, fmt.Errorf("-proxies %d, -namespaces %d, -policies %d, -rate %d: need 1 <= namespaces <= proxies, policies >= 1 and rate >= 1",
			s.Proxies, s.Namespaces, s.Policies, rate)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	out, _ = filepath.Abs(out)
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	step := func(what string, t0 time.Time) {
		fmt.Fprintf(os.Stderr, "== %s: %s\n", what, time.Since(t0).Round(time.Millisecond))
	}

	t0 := time.Now()
	env, err := kubeenv.Start(ctx, kubeenv.Options{Log: logger, QPS: 2000, Burst: 4000,
		APIServer: os.Getenv("KUBE_APISERVER")})
	if err != nil {
		return nil, err
	}
	defer env.Stop()
	deploy := filepath.Join(root, "deploy")
	for _, f := range []string{"00-namespaces.yaml", "10-istio-crds.yaml", "20-rbac.yaml"} {
		if err := env.ApplyFiles(ctx, filepath.Join(deploy, f)); err != nil {
			return nil, err
		}
	}
	step("kube-apiserver and etcd up, deploy/ CRDs and RBAC applied", t0)
	t0 = time.Now()
	pods, err := createMesh(ctx, env, s, workers)
	if err != nil {
		return nil, err
	}
	step(fmt.Sprintf("mesh created through the API (%d pods, %d policies, %d workers)", s.Proxies, s.Policies, workers), t0)

	floor := time.Duration(s.Proxies) * time.Second / time.Duration(rate)
	if certTTL == 0 {
		certTTL = 2 * (5*floor + 120*time.Second)
	}
	planes := []controlPlane{&wardendCP{bin: wardend, certTTL: certTTL}}
	if istiod != "" {
		planes = append(planes, &istiodCP{bin: istiod})
	}
	proto := "SotW"
	if delta {
		proto = "delta"
	}
	var results []*result
	for k, cp := range planes {
		if k > 0 { // the previous run changed two policies: put them back
			if err := env.Apply(ctx, []byte(s.nsPolicy(0, 0)+"---\n"+meshDeny(0))); err != nil {
				return nil, err
			}
		}
		work := filepath.Join(out, cp.name())
		if err := os.MkdirAll(work, 0o755); err != nil {
			return nil, err
		}
		b := &bench{cp: cp, env: env, size: s, pods: pods, rate: rate, delta: delta, out: out, work: work, log: step}
		r, err := b.run(ctx)
		cp.stop()
		if err != nil {
			return nil, fmt.Errorf("%s: %w\n--- %s log (tail) ---\n%s", cp.name(), err, cp.name(), cp.logTail())
		}
		results = append(results, r)
	}
	host, _ := os.Hostname()
	fmt.Fprintf(w, "\nmesh: %d sidecars (%s) in %d namespaces, %d namespace AuthorizationPolicies + 1 mesh-wide DENY, mesh-wide STRICT; streams opened at %d/s (pacing floor %s); host %s, %d CPUs\n",
		s.Proxies, proto, s.Namespaces, s.Policies, rate, floor, host, numCPU())
	printTable(w, results)
	fmt.Fprintf(w, "heap profiles and logs in %s\n", out)
	return results, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "deploy", "10-istio-crds.yaml")); err == nil {
			return dir, nil
		}
		if dir == filepath.Dir(dir) {
			return "", fmt.Errorf("run benchkube inside the repository (deploy/ not found)")
		}
	}
}
