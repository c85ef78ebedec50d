package xds

import (
	"context"
	"crypto/tls"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	alsdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/wardenmesh/warden/internal/meshtest"
)

// Sizes of BenchmarkPushUnderDenialFlood: simulated sidecars on ADS, and access log
// streams that flood wardend with denials during every second mesh-wide change.
const (
	pushBenchProxies = 200
	floodStreams     = 8
)

// BenchmarkPushUnderDenialFlood: access log traffic must not slow xDS pushes. Each
// iteration makes two mesh-wide changes (mesh PeerAuthentication STRICT <-> PERMISSIVE:
// every sidecar gets a new LDS), the first with the access log streams idle, the second
// while they flood wardend with batches of denials over real TLS gRPC, and it reports
// the p99 over all proxies of the time from SetInput to each proxy's new LDS, without
// and with the flood, side by side, with the flood's entries/s and wardend's CPU per
// 1,000 entries (this process) during it. No assertion on the figures.
func BenchmarkPushUnderDenialFlood(b *testing.B) {
	ts := startServer(b, func(o *Options) { o.AccessLogEntries, o.AccessLogBytes = 20000, 16<<20 })
	mesh := func(mode string) string {
		var docs []string
		docs = append(docs, meshtest.RootNamespace, meshtest.PeerAuthentication("default", "istio-system", "{mtls: {mode: "+mode+"}}"))
		for i := 0; i < 10; i++ {
			docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-%d}\n", i))
		}
		return meshtest.Join(docs...)
	}
	ts.srv.SetInput(meshtest.Input(b, mesh("STRICT")))

	var seq atomic.Int64
	type got struct {
		mu  sync.Mutex
		lds []time.Time
		seq []int64
	}
	proxies := make([]*got, pushBenchProxies)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ids []Identity
	for i := range proxies {
		p := &got{}
		proxies[i] = p
		id := Identity{Namespace: fmt.Sprintf("ns-%d", i%10), ServiceAccount: fmt.Sprintf("app-%d", i), Pod: fmt.Sprintf("app-%d", i)}
		ids = append(ids, id)
		st := benchADS(ctx, b, ts, id)
		go func() {
			for {
				resp, err := st.Recv()
				if err != nil {
					return
				}
				if resp.GetTypeUrl() == resource.ListenerType {
					p.mu.Lock()
					p.lds, p.seq = append(p.lds, time.Now()), append(p.seq, seq.Add(1))
					p.mu.Unlock()
				}
				_ = st.Send(&discovery.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()})
			}
		}()
	}
	// Every proxy's first LDS.
	waitLDS := func(mark int64) {
		deadline := time.Now().Add(60 * time.Second)
		for _, p := range proxies {
			for {
				p.mu.Lock()
				ok := len(p.seq) > 0 && p.seq[len(p.seq)-1] > mark
				p.mu.Unlock()
				if ok {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("a proxy got no new LDS within 60s")
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	waitLDS(0)
	latencies := func(mark int64, t0 time.Time) []time.Duration {
		var out []time.Duration
		for _, p := range proxies {
			p.mu.Lock()
			for i, s := range p.seq {
				if s > mark {
					out = append(out, p.lds[i].Sub(t0))
					break
				}
			}
			p.mu.Unlock()
		}
		return out
	}

	// The flood: denial batches of 100, as Envoy batches them, on streams held to
	// proxies' identities, sent only while flooding is set.
	var flooding atomic.Bool
	var sent atomic.Int64
	batch := make([]*alsdata.HTTPAccessLogEntry, 100)
	for i := range batch {
		batch[i] = deniedHTTP(b, "/admin")
	}
	var fwg sync.WaitGroup
	for i := 0; i < floodStreams; i++ {
		id := ids[i]
		st := benchALS(ctx, b, ts, id)
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for ctx.Err() == nil {
				if !flooding.Load() {
					time.Sleep(time.Millisecond)
					continue
				}
				if err := st.Send(&alsv3.StreamAccessLogsMessage{LogEntries: httpLogs(batch...)}); err != nil {
					return
				}
				sent.Add(int64(len(batch)))
			}
		}()
	}

	var quiet, flood []time.Duration
	var floodTime, floodCPU time.Duration
	var floodEntries int64
	mode := "STRICT"
	toggle := func() []time.Duration {
		if mode == "STRICT" {
			mode = "PERMISSIVE"
		} else {
			mode = "STRICT"
		}
		mark := seq.Load()
		t0 := time.Now()
		ts.srv.SetInput(meshtest.Input(b, mesh(mode)))
		waitLDS(mark)
		return latencies(mark, t0)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		quiet = append(quiet, toggle()...)
		// Let the flood run before the change, so the change meets a busy server.
		n0, c0, t0 := sent.Load(), cpuTime(), time.Now()
		flooding.Store(true)
		for sent.Load()-n0 < 20000 {
			time.Sleep(time.Millisecond)
		}
		flood = append(flood, toggle()...)
		flooding.Store(false)
		floodEntries += sent.Load() - n0
		floodTime += time.Since(t0)
		floodCPU += cpuTime() - c0
	}
	b.StopTimer()
	cancel()
	fwg.Wait()
	b.ReportMetric(ms(pctl(quiet, 99)), "push-p99-ms")
	b.ReportMetric(ms(pctl(flood, 99)), "push-p99-flood-ms")
	b.ReportMetric(float64(floodEntries)/floodTime.Seconds(), "flood-entries/s")
	b.ReportMetric(float64(floodCPU.Microseconds())/1000/(float64(floodEntries)/1000), "flood-cpu-ms/1000entries")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pctl(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	d = append([]time.Duration(nil), d...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := (len(d)*p+99)/100 - 1
	if i < 0 {
		i = 0
	}
	return d[i]
}

func benchConn(b *testing.B, ts *testServer) *grpc.ClientConn {
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: ts.ca.Roots(), ServerName: "wardend"})))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
}

// benchADS opens a sidecar's ADS stream subscribed to every listener.
func benchADS(ctx context.Context, b *testing.B, ts *testServer, id Identity) discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
	sctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+ts.token(b, id))
	st, err := discovery.NewAggregatedDiscoveryServiceClient(benchConn(b, ts)).StreamAggregatedResources(sctx)
	if err != nil {
		b.Fatal(err)
	}
	md, _ := NodeMetadata(id, map[string]string{"app": id.Pod}, nil, false)
	if err := st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: id.NodeID(), Metadata: md}, TypeUrl: resource.ListenerType}); err != nil {
		b.Fatal(err)
	}
	return st
}

// benchALS opens an access log stream held to id, its first message naming the node.
func benchALS(ctx context.Context, b *testing.B, ts *testServer, id Identity) alsv3.AccessLogService_StreamAccessLogsClient {
	sctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+ts.token(b, id))
	st, err := alsv3.NewAccessLogServiceClient(benchConn(b, ts)).StreamAccessLogs(sctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Send(&alsv3.StreamAccessLogsMessage{Identifier: &alsv3.StreamAccessLogsMessage_Identifier{Node: nodeOf(b, id), LogName: "warden"}}); err != nil {
		b.Fatal(err)
	}
	return st
}
