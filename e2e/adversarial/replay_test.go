package adversarial

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenmesh/warden/translate"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/wardenmesh/warden/xds"
)

// syncz reads wardend's per-proxy status.
func (w *wardend) syncz(t *testing.T) []xds.ProxyStatus {
	t.Helper()
	resp, err := http.Get("http://" + w.debugAddr + "/debug/syncz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s xds.SynczResponse
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s.Proxies
}

// TestTokenReplayOnSecondStream: a second stream presenting the same token with other
// LABELS and INSTANCE_IPS replaces the first (one stream per proxy) but is served
// exactly what the first was: what a proxy claims never changes its configuration.
// Status shows the proxy once, and it is gone once the replaying stream closes.
func TestTokenReplayOnSecondStream(t *testing.T) {
	w := startWardend(t, mesh)
	tok := w.token(t, admin, time.Hour)
	real := w.open(t, w.conn(t), tok, false)
	subscribeOwn(t, real, admin)
	want := real.listeners(t)
	if len(want) == 0 || !hasPort(want, "9090") {
		t.Fatalf("admin's own listeners lack its inbound port 9090: %v", keys(want))
	}

	before := w.metric(t, "warden_xds_replaced_streams_total")
	replay := w.open(t, w.conn(t), tok, false)
	claims := node(admin, map[string]string{"app": "web"}, []string{"10.9.0.2"})
	if err := replay.request(claims, resource.SecretType, translate.SecretDefault, translate.SecretRootCA); err != nil {
		t.Fatal(err)
	}
	if err := replay.waitResponse(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{resource.ClusterType, resource.ListenerType} {
		if err := replay.request(nil, typ); err != nil {
			t.Fatal(err)
		}
		if err := replay.waitResponse(15 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if got := replay.listeners(t); !equalMaps(got, want) {
		t.Errorf("the replaying stream's LABELS/INSTANCE_IPS changed the listeners it was served:\n got %v\nwant %v", keys(got), keys(want))
	}
	if err := real.waitClosed(15 * time.Second); grpcstatus.Code(err) != codes.Aborted {
		t.Errorf("the older stream ended with %v, want Aborted (replaced)", err)
	}
	if after := w.metric(t, "warden_xds_replaced_streams_total"); after != before+1 {
		t.Errorf("replaced streams %v -> %v, want +1", before, after)
	}
	ps := w.syncz(t)
	if len(ps) != 1 || ps[0].ID != admin.NodeID() {
		t.Fatalf("status lists %+v, want admin-0.shop once", ps)
	}
	replay.cancel()
	if err := replay.waitClosed(15 * time.Second); err == nil {
		t.Fatal("replay stream did not end")
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(w.syncz(t)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("proxy still listed after its only stream closed: %+v", w.syncz(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(w.log(t), "the older stream is closed") {
		t.Error("the replacement was not logged")
	}
}

// TestLabelAndIPClaimsAreIgnored: node metadata that claims web's labels and IP gives
// admin's stream exactly admin's configuration, with and without the claims.
func TestLabelAndIPClaimsAreIgnored(t *testing.T) {
	w := startWardend(t, mesh)
	tok := w.token(t, admin, time.Hour)
	served := func(labels map[string]string, ips []string) map[string]string {
		cl := w.open(t, w.conn(t), tok, true)
		if err := cl.request(node(admin, labels, ips), resource.ListenerType); err != nil {
			t.Fatal(err)
		}
		if err := cl.waitResponse(15 * time.Second); err != nil {
			t.Fatal(err)
		}
		l := cl.listeners(t)
		cl.cancel()
		_ = cl.waitClosed(15 * time.Second)
		return l
	}
	plain := served(nil, nil)
	claimed := served(map[string]string{"app": "web"}, []string{"10.9.0.2"})
	if !hasPort(plain, "9090") || !equalMaps(plain, claimed) {
		t.Fatalf("claimed labels/IPs changed the configuration:\nplain   %v\nclaimed %v", keys(plain), keys(claimed))
	}
}

// TestSDSNamesOfOtherIdentities: a proxy asking SDS for names it has no business with
// (other SPIFFE IDs, Kubernetes secret names, paths) gets its own default and ROOTCA
// at most, never another identity's certificate or key.
func TestSDSNamesOfOtherIdentities(t *testing.T) {
	w := startWardend(t, mesh)
	for _, delta := range []bool{false, true} {
		t.Run(proto(delta), func(t *testing.T) {
			cl := w.open(t, w.conn(t), w.token(t, web, time.Hour), delta)
			names := []string{translate.SecretDefault, translate.SecretRootCA, spiffe(admin), "spiffe://cluster.local/ns/shop/sa/admin",
				"kubernetes://admin-cert", "file-cert:/etc/warden/key.pem", "default/admin", "*", ""}
			if err := cl.request(node(web, nil, nil), resource.SecretType, names...); err != nil {
				t.Fatal(err)
			}
			if err := cl.waitResponse(15 * time.Second); err != nil {
				t.Fatal(err)
			}
			cl.mu.Lock()
			n := len(cl.served)
			cl.mu.Unlock()
			ids := cl.servedIdentities(t)
			for id := range ids {
				if !strings.Contains(id, spiffe(web)) {
					t.Errorf("served %q to web", id)
				}
			}
			if n > 2 {
				t.Errorf("served %d secrets, want at most default and ROOTCA", n)
			}
		})
	}
}

// TestOversizedRequestIsRefused: a request above the receive limit ends that stream
// with ResourceExhausted; the server keeps serving others.
func TestOversizedRequestIsRefused(t *testing.T) {
	w := startWardend(t, mesh)
	cl := w.open(t, w.conn(t), w.token(t, web, time.Hour), false)
	big := make([]string, 0, 6000)
	for i := 0; i < 6000; i++ {
		big = append(big, strings.Repeat("x", 1000))
	}
	_ = cl.request(node(web, nil, nil), resource.ListenerType, big...)
	if err := cl.waitClosed(15 * time.Second); grpcstatus.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized request: stream ended with %v, want ResourceExhausted", err)
	}
	ok := w.open(t, w.conn(t), w.token(t, admin, time.Hour), false)
	subscribeOwn(t, ok, admin)
}

// TestNACKFloodLogIsBounded: one proxy sending NACKs with 1 MiB error messages as
// fast as it can costs a bounded, small amount of log.
func TestNACKFloodLogIsBounded(t *testing.T) {
	w := startWardend(t, mesh)
	cl := w.open(t, w.conn(t), w.token(t, web, time.Hour), false)
	if err := cl.request(node(web, nil, nil), resource.ListenerType); err != nil {
		t.Fatal(err)
	}
	if err := cl.waitResponse(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	resp := lastSotw(t, cl)
	start := w.logSize(t)
	msg := strings.Repeat("E", 1<<20)
	const nacks = 30
	for i := 0; i < nacks; i++ {
		if err := cl.sotw.Send(&discovery.DiscoveryRequest{TypeUrl: resource.ListenerType, ResponseNonce: resp.nonce,
			VersionInfo: "", ErrorDetail: &status.Status{Code: 3, Message: msg}}); err != nil {
			t.Fatal(err)
		}
	}
	// The NACKs are recorded in order; wait until status shows the last one.
	deadline := time.Now().Add(15 * time.Second)
	for {
		ps := w.syncz(t)
		if len(ps) == 1 && ps[0].Types["LDS"].Status == xds.StatusError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("NACK never reached status: %+v", ps)
		}
		time.Sleep(50 * time.Millisecond)
	}
	grown := w.logSize(t) - start
	if grown > 64<<10 {
		t.Fatalf("%d NACKs of 1 MiB grew the log by %d bytes, want at most 64 KiB", nacks, grown)
	}
	if !strings.Contains(w.log(t), "bytes)") {
		t.Errorf("a truncated NACK message must say its full size")
	}
}

type sotwResp struct{ nonce, version string }

// lastSotw re-reads the nonce of the response a SotW client got most recently.
func lastSotw(t *testing.T, cl *client) sotwResp {
	t.Helper()
	ps := cl.nonces()
	if ps.nonce == "" {
		t.Fatal("no nonce recorded")
	}
	return ps
}

// TestConnectionFloodLegitimateProxyStillSyncs: while hundreds of unauthenticated
// streams and connections hammer the port, a legitimate proxy still gets its
// configuration, and the rejections cost a bounded amount of log.
func TestConnectionFloodLegitimateProxyStillSyncs(t *testing.T) {
	w := startWardend(t, mesh)
	start := w.logSize(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := w.conn(t)
				for i := 0; i < 20; i++ {
					cl := w.open(t, c, "garbage", false)
					_ = cl.request(node(admin, nil, nil), resource.SecretType, translate.SecretDefault)
					_ = cl.waitClosed(10 * time.Second)
				}
				c.Close()
			}
		}()
	}
	for i := 0; i < 3; i++ {
		ok := w.open(t, w.conn(t), w.token(t, web, time.Hour), false)
		subscribeOwn(t, ok, web)
		if ids := ok.servedIdentities(t); !ids[spiffe(web)] {
			t.Fatalf("legitimate proxy got %v during the flood", ids)
		}
		ok.cancel()
	}
	close(stop)
	wg.Wait()
	fails := w.metric(t, "warden_xds_auth_failures_total")
	if fails < 100 {
		t.Fatalf("only %v rejected streams: the flood did not happen", fails)
	}
	if grown := w.logSize(t) - start; grown > 32<<10 {
		t.Errorf("%v rejected streams grew the log by %d bytes, want at most 32 KiB", fails, grown)
	}
}

func hasPort(ls map[string]string, port string) bool {
	for _, v := range ls {
		if strings.Contains(v, port) {
			return true
		}
	}
	for k := range ls {
		if strings.Contains(k, port) {
			return true
		}
	}
	return false
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
