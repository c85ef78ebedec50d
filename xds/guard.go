package xds

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Limits of the xDS port. A proxy needs one ADS stream and sends small requests
// (a NACK carries Envoy's error text, which Envoy itself caps well below these).
const (
	maxStreamsPerConn = 16
	maxRecvMsgSize    = 4 << 20
	maxHeaderListSize = 64 << 10
	logBurst          = 5
	logEvery          = 2 * time.Second // per additional line, per proxy or remote
)

// errReplaced is the cause a stream is closed with when a newer stream of the same
// proxy takes over.
var errReplaced = errors.New("a newer xDS stream of this proxy replaced this one")

// streamCancelKey carries a stream's cancel function from the guard to the open
// callback, so the server can close a stream that is replaced.
type streamCancelKey struct{}

// streamGuard wraps go-control-plane's ADS server so that every stream runs under a
// context Warden can cancel: go-control-plane ends a stream when its context is done.
type streamGuard struct{ serverv3.Server }

func (g streamGuard) StreamAggregatedResources(st discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	ctx, cancel := context.WithCancelCause(st.Context())
	defer cancel(nil)
	err := g.Server.StreamAggregatedResources(&guardedStream[discovery.DiscoveryRequest, discovery.DiscoveryResponse]{
		BidiStreamingServer: st, ctx: context.WithValue(ctx, streamCancelKey{}, cancel)})
	return closedErr(ctx, err)
}

func (g streamGuard) DeltaAggregatedResources(st discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	ctx, cancel := context.WithCancelCause(st.Context())
	defer cancel(nil)
	err := g.Server.DeltaAggregatedResources(&guardedStream[discovery.DeltaDiscoveryRequest, discovery.DeltaDiscoveryResponse]{
		BidiStreamingServer: st, ctx: context.WithValue(ctx, streamCancelKey{}, cancel)})
	return closedErr(ctx, err)
}

// closedErr names the reason when Warden closed the stream itself.
func closedErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errReplaced) {
		return status.Error(codes.Aborted, cause.Error())
	}
	return err
}

// guardedStream gives go-control-plane a stream whose context Warden can cancel, and
// whose Recv returns once it is: go-control-plane's SotW loop ends only when Recv
// fails, and the gRPC stream's own Recv would block until the client sends again.
type guardedStream[Req, Resp any] struct {
	grpc.BidiStreamingServer[Req, Resp]
	ctx  context.Context
	once sync.Once
	ch   chan received[Req]
}

type received[Req any] struct {
	req *Req
	err error
}

func (s *guardedStream[Req, Resp]) Context() context.Context { return s.ctx }

func (s *guardedStream[Req, Resp]) Recv() (*Req, error) {
	s.once.Do(func() {
		s.ch = make(chan received[Req])
		go s.pump()
	})
	select {
	case r := <-s.ch:
		return r.req, r.err
	case <-s.ctx.Done():
		return nil, context.Cause(s.ctx)
	}
}

// pump reads the gRPC stream until it fails; it ends with the stream, which gRPC
// ends once the handler has returned.
func (s *guardedStream[Req, Resp]) pump() {
	for {
		req, err := s.BidiStreamingServer.Recv()
		select {
		case s.ch <- received[Req]{req, err}:
		case <-s.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// remoteAddr is the peer address of a stream, for logs.
func remoteAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// hostOf drops the port, so that one client's connections share a log budget.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
