package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/xds"
)

var short = map[string]string{resource.ClusterType: "CDS", resource.ListenerType: "LDS",
	resource.RouteType: "RDS", resource.EndpointType: "EDS", resource.SecretType: "SDS"}

// simProxy is one simulated sidecar.
type simProxy struct {
	ns, app string
	mu      sync.Mutex
	got     map[string][]event // by short type
}

type event struct {
	seq int64
	at  time.Time
}

func (p *simProxy) has(typ string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got[typ]) > 0
}

func (p *simProxy) gotSince(typ string, mark int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.got[typ] {
		if e.seq > mark {
			return true
		}
	}
	return false
}

type fleet struct {
	xdsAddr string
	ca      *certs.CA
	signer  *certs.TokenSigner
	seq     atomic.Int64
	mu      sync.Mutex
	proxies []*simProxy
}

func newFleet(stateDir, xdsAddr string) (*fleet, error) {
	ca, err := certs.LoadOrCreateCA(stateDir, "cluster.local", time.Now)
	if err != nil {
		return nil, err
	}
	signer, err := certs.LoadOrCreateTokenKey(stateDir)
	if err != nil {
		return nil, err
	}
	return &fleet{xdsAddr: xdsAddr, ca: ca, signer: signer}, nil
}

func (f *fleet) mark() int64 { return f.seq.Load() }

// connect opens proxy i's stream and keeps ACKing in the background.
func (f *fleet) connect(ctx context.Context, i, namespaces int) error {
	p := &simProxy{ns: nsName(i % namespaces), app: fmt.Sprintf("app-%04d", i), got: map[string][]event{}}
	f.mu.Lock()
	f.proxies = append(f.proxies, p)
	f.mu.Unlock()
	id := xds.Identity{Namespace: p.ns, ServiceAccount: p.app, Pod: p.app}
	tok, err := f.signer.Sign(certs.TokenClaims{Namespace: id.Namespace, ServiceAccount: id.ServiceAccount, Pod: id.Pod}, time.Hour, time.Now())
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(f.xdsAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: f.ca.Roots(), ServerName: "wardend"})))
	if err != nil {
		return err
	}
	sctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(sctx)
	if err != nil {
		return err
	}
	md, _ := xds.NodeMetadata(id, map[string]string{"app": p.app}, nil, false)
	node := &core.Node{Id: id.NodeID(), Metadata: md}
	for _, typ := range []string{resource.ClusterType, resource.ListenerType} {
		if err := st.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typ}); err != nil {
			return err
		}
	}
	go func() {
		defer conn.Close()
		for {
			resp, err := st.Recv()
			if err != nil {
				return
			}
			now := time.Now()
			p.mu.Lock()
			typ := short[resp.GetTypeUrl()]
			p.got[typ] = append(p.got[typ], event{seq: f.seq.Add(1), at: now})
			p.mu.Unlock()
			if err := st.Send(&discovery.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(),
				ResponseNonce: resp.GetNonce()}); err != nil {
				return
			}
		}
	}()
	return nil
}

func (f *fleet) waitAll(ctx context.Context, done func(*simProxy) bool) error {
	for {
		n := 0
		f.mu.Lock()
		for _, p := range f.proxies {
			if done(p) {
				n++
			}
		}
		total := len(f.proxies)
		f.mu.Unlock()
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

func (f *fleet) waitOne(ctx context.Context, p *simProxy, typ string, mark int64) error {
	for !p.gotSince(typ, mark) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// pushedSince counts proxies that received anything after mark.
func (f *fleet) pushedSince(mark int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, p := range f.proxies {
		for typ := range short {
			if p.gotSince(short[typ], mark) {
				n++
				break
			}
		}
	}
	return n
}

// latencies is, per proxy, the time from t0 to its first response of typ after mark.
func (f *fleet) latencies(typ string, mark int64, t0 time.Time) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for _, p := range f.proxies {
		p.mu.Lock()
		for _, e := range p.got[typ] {
			if e.seq > mark {
				out = append(out, e.at.Sub(t0))
				break
			}
		}
		p.mu.Unlock()
	}
	return out
}
