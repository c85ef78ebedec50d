package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/inject"
	"github.com/wardenmesh/warden/xds"
)

// replicaService is the harness's stand-in for the wardend Service and kube-proxy: it spreads
// new connections over the replicas that are up, as kube-proxy spreads over ready
// endpoints.
type replicaService struct {
	mu   sync.Mutex
	up   []string // xDS addresses of live replicas, in order
	next int
}

// pick returns a live replica's xDS address; prefer is tried first (the initial spread).
func (s *replicaService) pick(prefer string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.up {
		if a == prefer {
			return a
		}
	}
	s.next++
	return s.up[s.next%len(s.up)]
}

func (s *replicaService) remove(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range s.up {
		if a == addr {
			s.up = append(s.up[:i], s.up[i+1:]...)
			return
		}
	}
}

// sidecar is a simulated sidecar: a real gRPC ADS client with a pod-bound token that
// subscribes to CDS and LDS, ACKs every response, and when its stream ends reconnects
// through the service, as Envoy does.
type sidecar struct {
	id    xds.Identity
	token string
}

func (p *sidecar) run(ctx context.Context, svc *replicaService, first string, roots *x509.CertPool) {
	addr := first
	for ctx.Err() == nil {
		_ = p.stream(ctx, svc.pick(addr), roots)
		addr = ""
		select { // Envoy's reconnect back-off, shortened
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *sidecar) stream(ctx context.Context, addr string, roots *x509.CertPool) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "wardend"})))
	if err != nil {
		return err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+p.token))
	defer cancel()
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(sctx)
	if err != nil {
		return err
	}
	md, err := xds.NodeMetadata(p.id, nil, nil, false)
	if err != nil {
		return err
	}
	node := &core.Node{Id: p.id.NodeID(), Metadata: md}
	for _, typ := range []string{resource.ClusterType, resource.ListenerType} {
		if err := st.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typ}); err != nil {
			return err
		}
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		if err := st.Send(&discovery.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(),
			ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
	}
}

// TestReplicasShareTheFleet runs three wardend replicas in Kubernetes mode against one
// API server: they serve one mesh CA, the harness spreads simulated sidecars over them,
// `wardenctl status --server a,b,c` shows each proxy once with its replica, and when one
// replica is killed its proxies reconnect to the survivors and are SYNCED there while
// the proxies that stayed are pushed nothing.
func TestReplicasShareTheFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	work := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	p := begin(t, "start the API server, apply deploy/, start three wardend replicas")
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
	if err := env.ApplyFiles(ctx, filepath.Join(repoRoot(t), "deploy")); err != nil {
		t.Fatal(err)
	}
	if err := env.EnsureNamespace(ctx, "scale"); err != nil {
		t.Fatal(err)
	}
	if err := env.Apply(ctx, []byte(`{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"scale","name":"api"},
"spec":{"selector":{"app":"api"},"ports":[{"name":"http","port":8080}]}}`)); err != nil {
		t.Fatal(err)
	}
	kc, err := env.ServiceAccountKubeconfig(ctx, kubeenv.WardendNamespace, kubeenv.WardendServiceAccount, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wardendKC := filepath.Join(work, "wardend.kubeconfig")
	if err := os.WriteFile(wardendKC, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	// The fleet's Pods exist before the replicas start, so every replica's first input
	// already has them: a Pod arriving later is a mesh-wide change, and would be pushed
	// to every proxy in the middle of the "nothing else is pushed" check below.
	const n = 12
	pods := make([]*corev1.Pod, n)
	for i := range n {
		if pods[i], err = env.WritePod(ctx, kubeenv.Pod{Namespace: "scale", Name: fmt.Sprintf("api-%d", i), ServiceAccount: "api",
			IP: fmt.Sprintf("10.250.3.%d", i+1), Labels: map[string]string{"app": "api"}}); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"wardend-0", "wardend-1", "wardend-2"}
	replicas := make([]*wardend, len(names))
	for i, name := range names {
		dir := filepath.Join(work, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		replicas[i] = startWardend(t, ctx, bin.Wardend, wardendKC, dir, "--replica", name)
	}
	rootPEM, err := env.MeshRootPEM(ctx, kubeenv.WardendNamespace)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	// One root for all: the published ConfigMap holds the Secret's root (each replica's
	// serving certificate is checked against it by every sidecar below).
	waitFor(t, ctx, 60*time.Second, "warden-ca-root in namespace scale", func() error {
		cm, err := env.Client.CoreV1().ConfigMaps("scale").Get(ctx, inject.DefaultConfig().RootConfigMap, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data[inject.RootCertKey] != string(rootPEM) {
			return fmt.Errorf("ConfigMap root differs from Secret %s/warden-ca", kubeenv.WardendNamespace)
		}
		return nil
	})
	p.end()

	p = begin(t, fmt.Sprintf("%d simulated sidecars with pod-bound tokens, spread over the replicas", n))
	svc := &replicaService{}
	for _, w := range replicas {
		svc.up = append(svc.up, w.xdsAddr)
	}
	home := map[string]int{} // proxy id -> replica index it was spread to
	sctx, stopSidecars := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { stopSidecars(); wg.Wait() })
	for i, pod := range pods {
		tok, err := env.Token(ctx, "scale", "api", []string{kubeenv.ProxyTokenAudience}, pod, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		sc := &sidecar{id: xds.Identity{Namespace: "scale", ServiceAccount: "api", Pod: pod.Name}, token: tok}
		home[sc.id.NodeID()] = i % len(replicas)
		wg.Go(func() { sc.run(sctx, svc, replicas[i%len(replicas)].xdsAddr, roots) })
	}
	// The replicas serve one configuration (the same input version, a content hash, from
	// the same API server), and each has its share of the fleet SYNCED on it.
	waitFor(t, ctx, 60*time.Second, "one configuration on every replica, each replica's proxies SYNCED", func() error {
		versions := map[string]bool{}
		for i, w := range replicas {
			if err := fleetSynced(t, ctx, w, func(id string) bool { return home[id] == i }, n/len(replicas)); err != nil {
				return err
			}
			r, err := w.getSyncz(ctx)
			if err != nil {
				return err
			}
			versions[r.InputVersion] = true
		}
		if len(versions) != 1 {
			return fmt.Errorf("the replicas serve input versions %v", versions)
		}
		return nil
	})
	p.end()

	p = begin(t, "wardenctl status --server a,b,c shows each proxy once, with its replica")
	servers := make([]string, len(replicas))
	for i, w := range replicas {
		servers[i] = w.debugAddr
	}
	rows, _, err := statusAllSynced(t, ctx, bin.Wardenctl, servers)
	if err != nil {
		t.Fatalf("wardenctl status: %v", err)
	}
	checkRowsOnce(t, rows, n, func(id, replica string) error {
		if want := names[home[id]]; replica != want {
			return fmt.Errorf("%s shown on %s, want %s", id, replica, want)
		}
		return nil
	})
	p.end()

	p = begin(t, "kill "+names[0]+": its proxies move to the survivors and are SYNCED there")
	before := map[string]xds.ProxyStatus{} // the proxies that stay, as their replica shows them
	for i := 1; i < len(replicas); i++ {
		for _, ps := range replicas[i].syncz(t, ctx).Proxies {
			before[ps.ID] = ps
		}
	}
	if len(before) != n-n/len(replicas) {
		t.Fatalf("survivors serve %d proxies before the kill, want %d", len(before), n-n/len(replicas))
	}
	killed := time.Now()
	svc.remove(replicas[0].xdsAddr)                        // kube-proxy drops the endpoint...
	if err := replicas[0].cmd.Process.Kill(); err != nil { // ...of a replica that died
		t.Fatal(err)
	}
	<-replicas[0].done
	waitFor(t, ctx, 60*time.Second, "every proxy SYNCED on the survivors", func() error {
		var synced int
		for _, w := range replicas[1:] {
			r, err := w.getSyncz(ctx)
			if err != nil {
				return err
			}
			for _, ps := range r.Proxies {
				if !ps.Synced() {
					return fmt.Errorf("%s on %s not SYNCED", ps.ID, ps.Wardend)
				}
				synced++
			}
		}
		if synced != n {
			return fmt.Errorf("%d of %d proxies SYNCED on the survivors", synced, n)
		}
		return nil
	})
	t.Logf("replica loss recovered: all %d proxies SYNCED on the survivors %s after the kill (bench figure; target 15 s)",
		n, time.Since(killed).Round(time.Millisecond))

	rows, stderr, err := statusAllSynced(t, ctx, bin.Wardenctl, servers)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 {
		t.Fatalf("wardenctl status with a replica down: %v, want exit 4\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "ERROR: wardend at "+replicas[0].debugAddr) {
		t.Fatalf("wardenctl status does not report the dead replica:\n%s", stderr)
	}
	checkRowsOnce(t, rows, n, func(id, replica string) error {
		if replica == names[0] {
			return fmt.Errorf("%s still shown on the dead replica", id)
		}
		return nil
	})

	// Nothing else is pushed: the proxies that stayed have the same stream and the same
	// push count as before the kill.
	for i := 1; i < len(replicas); i++ {
		r := replicas[i].syncz(t, ctx)
		for id, was := range before {
			if was.Wardend != names[i] {
				continue
			}
			now, ok := proxyStatus(r, id)
			if !ok {
				t.Errorf("%s left %s", id, names[i])
				continue
			}
			if !now.ConnectedAt.Equal(was.ConnectedAt) {
				t.Errorf("%s reconnected to %s (at %s, first at %s)", id, names[i], now.ConnectedAt, was.ConnectedAt)
			}
			for typ, st := range now.Types {
				if old := was.Types[typ].Pushes; st.Pushes != old {
					t.Errorf("%s on %s: %s pushed %d time(s) after the kill (%d before, %d now)", id, names[i], typ,
						st.Pushes-old, old, st.Pushes)
				}
			}
		}
	}
	p.end()

	p = begin(t, "a survivor takes over publishing the mesh root")
	// The killed replica could not release the publisher Lease; once it expires, a
	// survivor restores a deleted warden-ca-root.
	if err := env.Client.CoreV1().ConfigMaps("scale").Delete(ctx, inject.DefaultConfig().RootConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 60*time.Second, "warden-ca-root restored by a survivor", func() error {
		cm, err := env.Client.CoreV1().ConfigMaps("scale").Get(ctx, inject.DefaultConfig().RootConfigMap, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data[inject.RootCertKey] != string(rootPEM) {
			return fmt.Errorf("ConfigMap root differs from the Secret's")
		}
		return nil
	})
	lease, err := env.Client.CoordinationV1().Leases(kubeenv.WardendNamespace).Get(ctx, "wardend-publisher", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || (*h != names[1] && *h != names[2]) {
		t.Fatalf("Lease wardend-publisher held by %v, want a survivor", h)
	}
	t.Logf("Lease wardend-publisher now held by %s", *lease.Spec.HolderIdentity)
	p.end()
}

// fleetSynced checks that w serves want proxies, each SYNCED and each mine.
func fleetSynced(t *testing.T, ctx context.Context, w *wardend, mine func(id string) bool, want int) error {
	t.Helper()
	r, err := w.getSyncz(ctx)
	if err != nil {
		return err
	}
	for _, ps := range r.Proxies {
		if !mine(ps.ID) {
			return fmt.Errorf("%s serves %s, spread to another replica", r.Wardend, ps.ID)
		}
		if !ps.Synced() {
			return fmt.Errorf("%s on %s not SYNCED", ps.ID, r.Wardend)
		}
	}
	if len(r.Proxies) != want {
		return fmt.Errorf("%s serves %d proxies, want %d", r.Wardend, len(r.Proxies), want)
	}
	return nil
}

func (w *wardend) getSyncz(ctx context.Context) (xds.SynczResponse, error) {
	var r xds.SynczResponse
	body, err := w.get(ctx, "/debug/syncz")
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(body, &r)
}

type statusJSONRow struct {
	Name, Namespace, Wardend string
	Synced                   bool
}

// wardenctlStatus runs `wardenctl status --server a,b,c -o json` and returns its rows
// and stderr.
func wardenctlStatus(ctx context.Context, bin string, servers []string) ([]statusJSONRow, string, error) {
	cmd := exec.CommandContext(ctx, bin, "status", "--server", strings.Join(servers, ","), "-o", "json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var rows []statusJSONRow
	if jerr := json.Unmarshal(out, &rows); jerr != nil {
		return nil, stderr.String(), fmt.Errorf("wardenctl status -o json: %v (%v)\n%s", jerr, err, out)
	}
	return rows, stderr.String(), err
}

// statusAllSynced runs `wardenctl status` until every row it shows is SYNCED (a Pod
// event of the API server can make a proxy STALE for the moment of its push; a proxy
// that stays unsynced still fails checkRowsOnce once the wait ends) and returns the
// last answer.
func statusAllSynced(t *testing.T, ctx context.Context, bin string, servers []string) (rows []statusJSONRow, stderr string, err error) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		rows, stderr, err = wardenctlStatus(ctx, bin, servers)
		unsynced := rows == nil
		for _, r := range rows {
			unsynced = unsynced || !r.Synced
		}
		if !unsynced {
			return rows, stderr, err
		}
		select {
		case <-wctx.Done():
			return rows, stderr, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkRowsOnce checks that rows list want proxies, each once and SYNCED, and each row
// passes check.
func checkRowsOnce(t *testing.T, rows []statusJSONRow, want int, check func(id, replica string) error) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range rows {
		id := r.Name + "." + r.Namespace
		seen[id]++
		if !r.Synced {
			t.Errorf("wardenctl status: %s not SYNCED", id)
		}
		if err := check(id, r.Wardend); err != nil {
			t.Error(err)
		}
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("wardenctl status shows %s %d times", id, c)
		}
	}
	if len(seen) != want || len(rows) != want {
		t.Fatalf("wardenctl status shows %d rows for %d proxies, want %d", len(rows), len(seen), want)
	}
}
