package adversarial

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/xds"
)

// mesh is the configuration every test serves: two workloads with Pod objects (so
// labels and IPs come from the objects), a Service each, and a policy that lets only
// web call admin.
const mesh = `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec:
  serviceAccountName: web
  containers: [{name: app, image: app, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 10.9.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: admin-0, namespace: shop, labels: {app: admin}}
spec:
  serviceAccountName: admin
  containers: [{name: app, image: app, ports: [{name: http, containerPort: 9090}]}]
status: {podIP: 10.9.0.3}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: admin, namespace: shop}
spec:
  selector: {app: admin}
  ports: [{name: http, port: 80, targetPort: 9090}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: admin-only-web, namespace: shop}
spec:
  selector: {matchLabels: {app: admin}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]
`

var (
	web   = xds.Identity{Namespace: "shop", ServiceAccount: "web", Pod: "web-0"}
	admin = xds.Identity{Namespace: "shop", ServiceAccount: "admin", Pod: "admin-0"}
)

// wardend is one wardend process in directory mode on loopback.
type wardend struct {
	bin, configDir, stateDir, logPath string
	xdsAddr, debugAddr                string
	cmd                               *exec.Cmd
	done                              chan struct{}
	signer                            *certs.TokenSigner
	roots                             *x509.CertPool
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var (
	binOnce sync.Once
	bins    harness.Binaries
	binErr  error
)

// binaries finds wardend and wardenctl (WARDEN_BIN, as `make test` sets it) or builds
// them once for the package.
func binaries(t *testing.T) harness.Binaries {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "warden-adversarial-bin-")
		if err != nil {
			binErr = err
			return
		}
		bins, binErr = harness.FindBinaries(context.Background(), dir)
	})
	if binErr != nil {
		t.Fatalf("binaries: %v", binErr)
	}
	return bins
}

// startWardend runs wardend on a folder holding config, with extra flags.
func startWardend(t *testing.T, config string, extra ...string) *wardend {
	t.Helper()
	dir := t.TempDir()
	w := &wardend{bin: binaries(t).Wardend, configDir: filepath.Join(dir, "mesh"), stateDir: filepath.Join(dir, "state"),
		logPath: filepath.Join(dir, "wardend.log"), xdsAddr: freeAddr(t), debugAddr: freeAddr(t)}
	if err := os.MkdirAll(w.configDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.configDir, "mesh.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	w.start(t, extra...)
	return w
}

func (w *wardend) start(t *testing.T, extra ...string) {
	t.Helper()
	lf, err := os.OpenFile(w.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--config-dir", w.configDir, "--state-dir", w.stateDir, "--xds-addr", w.xdsAddr,
		"--debug-addr", w.debugAddr, "--metrics-addr", "127.0.0.1:0", "--replica", "adversarial"}, extra...)
	w.cmd = exec.Command(w.bin, args...)
	w.cmd.Stdout, w.cmd.Stderr = lf, lf
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	w.done = done
	go func() { w.cmd.Wait(); lf.Close(); close(done) }()
	t.Cleanup(func() { w.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + w.debugAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("wardend exited:\n%s", w.log(t))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("wardend not ready: %v\n%s", err, w.log(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w.signer, err = certs.LoadOrCreateTokenKey(w.stateDir); err != nil {
		t.Fatal(err)
	}
	ca, err := certs.LoadOrCreateCA(w.stateDir, "cluster.local", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	w.roots = ca.Roots()
}

func (w *wardend) stop(t *testing.T) {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(os.Interrupt)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
	if t.Failed() {
		t.Logf("--- wardend log (tail) ---\n%s", tail(w.log(t), 40))
	}
}

func (w *wardend) log(t *testing.T) string {
	data, _ := os.ReadFile(w.logPath)
	return string(data)
}

func (w *wardend) logSize(t *testing.T) int64 {
	fi, err := os.Stat(w.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// token signs a directory-mode credential for id (labels and IPs as given).
func (w *wardend) token(t *testing.T, id xds.Identity, ttl time.Duration) string {
	t.Helper()
	tok, err := w.signer.Sign(certs.TokenClaims{Namespace: id.Namespace, ServiceAccount: id.ServiceAccount, Pod: id.Pod,
		Labels: id.Labels, IPs: id.IPs}, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// metric reads one sample of wardend's /metrics (0 when absent).
func (w *wardend) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + w.debugAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var sum float64
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// rawHeader marks a token argument that is the whole authorization header value.
const rawHeader = "raw-authorization:"

// conn is a real gRPC client connection to wardend's xDS port, verifying wardend's
// certificate as Envoy's bootstrap does.
func (w *wardend) conn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(w.xdsAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: w.roots, ServerName: xds.ServerName("warden-system")})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// client is one xDS stream (SotW or delta) that records everything it was served.
type client struct {
	t      *testing.T
	delta  bool
	sotw   discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	dstr   discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	cancel context.CancelFunc

	mu       sync.Mutex
	served   []*anypb.Any // every resource ever received
	last     sotwResp     // nonce and version of the last SotW response
	lastErr  error
	closed   chan struct{}
	received chan struct{}
}

func (w *wardend) open(t *testing.T, c *grpc.ClientConn, token string, delta bool) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	switch {
	case strings.HasPrefix(token, rawHeader):
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", strings.TrimPrefix(token, rawHeader))
	case token != "":
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	cl := &client{t: t, delta: delta, cancel: cancel, closed: make(chan struct{}), received: make(chan struct{}, 1024)}
	ads := discovery.NewAggregatedDiscoveryServiceClient(c)
	var err error
	if delta {
		cl.dstr, err = ads.DeltaAggregatedResources(ctx)
	} else {
		cl.sotw, err = ads.StreamAggregatedResources(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	go cl.recvLoop()
	return cl
}

func (cl *client) recvLoop() {
	defer close(cl.closed)
	for {
		var rs []*anypb.Any
		var err error
		if cl.delta {
			var r *discovery.DeltaDiscoveryResponse
			if r, err = cl.dstr.Recv(); err == nil {
				for _, x := range r.GetResources() {
					rs = append(rs, x.GetResource())
				}
			}
		} else {
			var r *discovery.DiscoveryResponse
			if r, err = cl.sotw.Recv(); err == nil {
				rs = r.GetResources()
				cl.mu.Lock()
				cl.last = sotwResp{nonce: r.GetNonce(), version: r.GetVersionInfo()}
				cl.mu.Unlock()
			}
		}
		cl.mu.Lock()
		if err != nil {
			cl.lastErr = err
			cl.mu.Unlock()
			return
		}
		cl.served = append(cl.served, rs...)
		cl.mu.Unlock()
		cl.received <- struct{}{}
	}
}

// node is the node message a client sends: id and metadata for ident, with optional
// LABELS and INSTANCE_IPS claims.
func node(ident xds.Identity, labels map[string]string, ips []string) *core.Node {
	md, _ := xds.NodeMetadata(ident, labels, ips, false)
	return &core.Node{Id: ident.NodeID(), Metadata: md}
}

// request subscribes to typeURL (names, for SDS) as n.
func (cl *client) request(n *core.Node, typeURL string, names ...string) error {
	if cl.delta {
		return cl.dstr.Send(&discovery.DeltaDiscoveryRequest{Node: n, TypeUrl: typeURL, ResourceNamesSubscribe: names})
	}
	return cl.sotw.Send(&discovery.DiscoveryRequest{Node: n, TypeUrl: typeURL, ResourceNames: names})
}

// waitResponse waits for one more response, or the stream's end.
func (cl *client) waitResponse(timeout time.Duration) error {
	select {
	case <-cl.received:
		return nil
	case <-cl.closed:
		return fmt.Errorf("stream ended: %v", cl.err())
	case <-time.After(timeout):
		return fmt.Errorf("no response within %s", timeout)
	}
}

// waitClosed waits for the stream to end and returns its error.
func (cl *client) waitClosed(timeout time.Duration) error {
	select {
	case <-cl.closed:
		return cl.err()
	case <-time.After(timeout):
		return fmt.Errorf("stream still open after %s", timeout)
	}
}

func (cl *client) nonces() sotwResp {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.last
}

func (cl *client) err() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.lastErr
}

// servedOf lists what the client received that names or belongs to ident: a
// certificate for its SPIFFE ID, or a listener/cluster naming its pod IP or service.
func (cl *client) servedIdentities(t *testing.T) map[string]bool {
	t.Helper()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	ids := map[string]bool{}
	for _, a := range cl.served {
		if a.GetTypeUrl() != resource.SecretType {
			continue
		}
		s := &tlsv3.Secret{}
		if err := a.UnmarshalTo(s); err != nil {
			t.Fatal(err)
		}
		chain := s.GetTlsCertificate().GetCertificateChain().GetInlineBytes()
		if len(chain) == 0 {
			continue
		}
		block, _ := pem.Decode(chain)
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range leaf.URIs {
			ids[u.String()] = true
		}
		if len(s.GetTlsCertificate().GetPrivateKey().GetInlineBytes()) > 0 {
			ids["private key for "+fmt.Sprint(leaf.URIs)] = true
		}
	}
	return ids
}

// listenerBytes returns the serialized listeners served, by name (the last version).
func (cl *client) listeners(t *testing.T) map[string]string {
	t.Helper()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	out := map[string]string{}
	for _, a := range cl.served {
		if a.GetTypeUrl() != resource.ListenerType {
			continue
		}
		l := &listener.Listener{}
		if err := a.UnmarshalTo(l); err != nil {
			t.Fatal(err)
		}
		out[l.GetName()] = string(a.GetValue())
	}
	return out
}

func spiffe(id xds.Identity) string {
	return "spiffe://cluster.local/ns/" + id.Namespace + "/sa/" + id.ServiceAccount
}
