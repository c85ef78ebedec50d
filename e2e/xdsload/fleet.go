// Package xdsload is a fleet of simulated sidecars for load measurements (e2e/cmd/load,
// e2e/cmd/benchkube): real ADS streams (SotW or delta, over TLS with a bearer token or
// plaintext) that subscribe to CDS and LDS, follow what the responses name as Envoy does
// (EDS for EDS clusters, RDS for route configurations, SDS for secrets) and ACK every
// response. Every response is recorded with a fleet-wide sequence number, so a
// measurement takes a Mark before a change and asks who got what after it.
package xdsload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/anypb"
)

// Short names of the xDS types, as the figures print them.
var Short = map[string]string{resource.ClusterType: "CDS", resource.ListenerType: "LDS",
	resource.RouteType: "RDS", resource.EndpointType: "EDS", resource.SecretType: "SDS"}

// Config is how every proxy of a fleet reaches its control plane.
type Config struct {
	Addr string
	// TLS, when set, secures the connection; nil is plaintext (istiod's 15010).
	TLS *tls.Config
	// Delta uses the incremental protocol instead of state of the world.
	Delta bool
}

// Proxy is one simulated sidecar.
type Proxy struct {
	NS, App string
	Node    *core.Node
	// Token, when set, is sent as "authorization: Bearer <token>".
	Token string

	mu     sync.Mutex
	got    map[string][]Event // by short type
	cancel context.CancelFunc
	done   chan struct{}
}

// Event is one response a proxy received.
type Event struct {
	Seq int64
	At  time.Time
	// RotateAt is, for an SDS response carrying a certificate, the half life of its leaf.
	RotateAt time.Time
}

// Has reports whether the proxy received a response of typ (short name).
func (p *Proxy) Has(typ string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got[typ]) > 0
}

// GotSince reports whether the proxy received a response of typ after mark.
func (p *Proxy) GotSince(typ string, mark int64) bool {
	return len(p.Since(typ, mark)) > 0
}

// Since lists the proxy's responses of typ after mark.
func (p *Proxy) Since(typ string, mark int64) []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Event
	for _, e := range p.got[typ] {
		if e.Seq > mark {
			out = append(out, e)
		}
	}
	return out
}

// Fleet is a set of proxies sharing a Config.
type Fleet struct {
	cfg     Config
	seq     atomic.Int64
	mu      sync.Mutex
	proxies []*Proxy
	errs    atomic.Int64
	errMu   sync.Mutex
	errKind map[string]int // failure message (first line) -> count
}

// New returns an empty fleet.
func New(cfg Config) *Fleet { return &Fleet{cfg: cfg} }

// Proxies returns the fleet's proxies in the order they were added.
func (f *Fleet) Proxies() []*Proxy {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.proxies)
}

// Mark is the sequence number of the latest response received by any proxy.
func (f *Fleet) Mark() int64 { return f.seq.Load() }

// StreamErrors counts streams that failed (and were opened again) other than by Drop.
func (f *Fleet) StreamErrors() int64 { return f.errs.Load() }

// Add registers p (once) and opens its stream; the stream keeps ACKing in the background
// until ctx ends or Drop.
func (f *Fleet) Add(ctx context.Context, p *Proxy) error {
	f.mu.Lock()
	if p.got == nil {
		p.got = map[string][]Event{}
		f.proxies = append(f.proxies, p)
	}
	f.mu.Unlock()
	return f.open(ctx, p)
}

func (f *Fleet) open(ctx context.Context, p *Proxy) error {
	creds := insecure.NewCredentials()
	if f.cfg.TLS != nil {
		creds = credentials.NewTLS(f.cfg.TLS)
	}
	conn, err := grpc.NewClient(f.cfg.Addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	if p.Token != "" {
		sctx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+p.Token)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cancel, p.done = cancel, done
	p.mu.Unlock()
	go func() {
		defer close(done)
		defer conn.Close()
		// A stream that fails is opened again after a jittered exponential backoff,
		// as Envoy does (0.5 s base, 30 s at most): a server that refuses streams over
		// its rate limit sees them come back.
		backoff := 500 * time.Millisecond
		for {
			err := f.stream(sctx, conn, p)
			if sctx.Err() != nil {
				return
			}
			f.errs.Add(1)
			f.noteError(err)
			select {
			case <-sctx.Done():
				return
			case <-time.After(time.Duration(rand.Int64N(int64(backoff))) + time.Millisecond):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	}()
	return nil
}

// stream runs one ADS stream of p until it fails or ctx ends.
func (f *Fleet) stream(ctx context.Context, conn *grpc.ClientConn, p *Proxy) error {
	client := discovery.NewAggregatedDiscoveryServiceClient(conn)
	if f.cfg.Delta {
		st, err := client.DeltaAggregatedResources(ctx)
		if err != nil {
			return err
		}
		return f.runDelta(p, st)
	}
	st, err := client.StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	return f.runSotW(p, st)
}

func (f *Fleet) noteError(err error) {
	msg := "stream ended"
	if err != nil {
		msg = err.Error()
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	f.errMu.Lock()
	defer f.errMu.Unlock()
	if f.errKind == nil {
		f.errKind = map[string]int{}
	}
	if len(f.errKind) < 20 || f.errKind[msg] > 0 {
		f.errKind[msg]++
	}
}

// StreamErrorKinds counts the failed streams by error message (the first 20 messages).
func (f *Fleet) StreamErrorKinds() map[string]int {
	f.errMu.Lock()
	defer f.errMu.Unlock()
	return maps.Clone(f.errKind)
}

// Drop closes every proxy's stream at once and waits until they have ended.
func (f *Fleet) Drop() {
	ps := f.Proxies()
	for _, p := range ps {
		p.mu.Lock()
		if p.cancel != nil {
			p.cancel()
		}
		p.mu.Unlock()
	}
	for _, p := range ps {
		p.mu.Lock()
		d := p.done
		p.mu.Unlock()
		if d != nil {
			<-d
		}
	}
}

// Reopen opens p's stream again after Drop.
func (f *Fleet) Reopen(ctx context.Context, p *Proxy) error { return f.open(ctx, p) }

func (f *Fleet) record(p *Proxy, typeURL string, rotateAt time.Time) {
	now := time.Now()
	p.mu.Lock()
	typ := Short[typeURL]
	p.got[typ] = append(p.got[typ], Event{Seq: f.seq.Add(1), At: now, RotateAt: rotateAt})
	p.mu.Unlock()
}

// follow is what a proxy subscribes to beyond CDS and LDS: the names its clusters and
// listeners refer to, by type URL.
type follow struct {
	names map[string][]string
}

func (f *follow) set(typeURL string, names map[string]bool) bool {
	l := slices.Sorted(maps.Keys(names))
	if slices.Equal(l, f.names[typeURL]) {
		return false
	}
	f.names[typeURL] = l
	return true
}

func (f *Fleet) runSotW(p *Proxy, st discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient) error {
	fol := follow{names: map[string][]string{}}
	acked := map[string]*discovery.DiscoveryResponse{}
	for i, typ := range []string{resource.ClusterType, resource.ListenerType} {
		req := &discovery.DiscoveryRequest{TypeUrl: typ}
		if i == 0 {
			req.Node = p.Node
		}
		if err := st.Send(req); err != nil {
			return err
		}
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		typ := resp.GetTypeUrl()
		f.record(p, typ, rotateAt(typ, resp.GetResources()))
		acked[typ] = resp
		if err := st.Send(&discovery.DiscoveryRequest{TypeUrl: typ, VersionInfo: resp.GetVersionInfo(),
			ResponseNonce: resp.GetNonce(), ResourceNames: fol.names[typ]}); err != nil {
			return err
		}
		// Subscribe to what the clusters and listeners name, as Envoy does.
		for dep, names := range referenced(typ, resp.GetResources()) {
			if !fol.set(dep, names) {
				continue
			}
			req := &discovery.DiscoveryRequest{TypeUrl: dep, ResourceNames: fol.names[dep]}
			if prev := acked[dep]; prev != nil {
				req.VersionInfo, req.ResponseNonce = prev.GetVersionInfo(), prev.GetNonce()
			}
			if err := st.Send(req); err != nil {
				return err
			}
		}
	}
}

func (f *Fleet) runDelta(p *Proxy, st discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient) error {
	held := map[string]map[string]*anypb.Any{} // by type URL, then name
	subscribed := map[string]map[string]bool{}
	for i, typ := range []string{resource.ClusterType, resource.ListenerType} {
		req := &discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResourceNamesSubscribe: []string{"*"}}
		if i == 0 {
			req.Node = p.Node
		}
		if err := st.Send(req); err != nil {
			return err
		}
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		typ := resp.GetTypeUrl()
		h := held[typ]
		if h == nil {
			h = map[string]*anypb.Any{}
			held[typ] = h
		}
		var res []*anypb.Any
		for _, r := range resp.GetResources() {
			h[r.GetName()] = r.GetResource()
			res = append(res, r.GetResource())
		}
		for _, n := range resp.GetRemovedResources() {
			delete(h, n)
		}
		f.record(p, typ, rotateAt(typ, res))
		if err := st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
		if typ != resource.ClusterType && typ != resource.ListenerType {
			continue
		}
		for dep, names := range referenced(typ, slices.Collect(maps.Values(h))) {
			cur := subscribed[dep]
			if cur == nil {
				cur = map[string]bool{}
				subscribed[dep] = cur
			}
			req := &discovery.DeltaDiscoveryRequest{TypeUrl: dep}
			for n := range names {
				if !cur[n] {
					cur[n] = true
					req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, n)
				}
			}
			if len(req.ResourceNamesSubscribe) == 0 {
				continue
			}
			sort.Strings(req.ResourceNamesSubscribe)
			if err := st.Send(req); err != nil {
				return err
			}
		}
	}
}

// rotateAt is the half life of the first leaf certificate in SDS resources.
func rotateAt(typeURL string, res []*anypb.Any) time.Time {
	if typeURL != resource.SecretType {
		return time.Time{}
	}
	for _, pemData := range secretCerts(res) {
		b, _ := pem.Decode(pemData)
		if b == nil {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil || c.IsCA {
			continue
		}
		return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) / 2)
	}
	return time.Time{}
}

// WaitAll polls until done holds for every proxy.
func (f *Fleet) WaitAll(ctx context.Context, done func(*Proxy) bool) error {
	for {
		n, total := 0, 0
		for _, p := range f.Proxies() {
			total++
			if done(p) {
				n++
			}
		}
		if n == total {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d proxies done: %w", n, total, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// WaitOne polls until p received a response of typ after mark.
func (f *Fleet) WaitOne(ctx context.Context, p *Proxy, typ string, mark int64) error {
	for !p.GotSince(typ, mark) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s.%s got no %s: %w", p.App, p.NS, typ, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// PushedSince counts proxies that received a response of one of types (all when none)
// after mark.
func (f *Fleet) PushedSince(mark int64, types ...string) int {
	if len(types) == 0 {
		types = slices.Collect(maps.Values(Short))
	}
	n := 0
	for _, p := range f.Proxies() {
		for _, typ := range types {
			if p.GotSince(typ, mark) {
				n++
				break
			}
		}
	}
	return n
}

// Latencies is, per proxy, the time from t0 to its first response of typ after mark.
func (f *Fleet) Latencies(typ string, mark int64, t0 time.Time) []time.Duration {
	var out []time.Duration
	for _, p := range f.Proxies() {
		if ev := p.Since(typ, mark); len(ev) > 0 {
			out = append(out, ev[0].At.Sub(t0))
		}
	}
	return out
}

// Settle waits until no proxy was pushed for quiet (bounded by ctx), so that late pushes
// after mark are counted.
func (f *Fleet) Settle(ctx context.Context, mark int64, quiet time.Duration) {
	last := f.Mark()
	since := time.Now()
	for time.Since(since) < quiet && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
		if n := f.Mark(); n != last {
			last, since = n, time.Now()
		}
	}
}

// Pct is the p-th percentile of d (sorted in place).
func Pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := (len(d)*p + 99) / 100
	if i > 0 {
		i--
	}
	return d[i]
}
