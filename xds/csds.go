package xds

import (
	"context"
	"errors"
	"io"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// csds serves sync status through Envoy's standard Client Status Discovery Service,
// on the authenticated xDS port, so tools other than wardenctl can read it. A proxy
// credential sees only its own node; the whole fleet needs an operator credential
// (OperatorAuth, endpoint "csds"), which exists only in Kubernetes mode.
type csds struct {
	statusv3.UnimplementedClientStatusDiscoveryServiceServer
	s *Server
}

func registerCSDS(gs *grpc.Server, s *Server) {
	statusv3.RegisterClientStatusDiscoveryServiceServer(gs, &csds{s: s})
}

// SetOperatorAuth lets operators read the whole fleet over CSDS (Kubernetes mode).
// Without it, CSDS answers proxies only, each about itself.
func (s *Server) SetOperatorAuth(a *OperatorAuth) {
	s.operators.Store(a)
}

func (s *Server) operatorAuth() *OperatorAuth { return s.operators.Load() }

// fleet is the scope of an operator credential: every node.
const fleet = ""

// scope authenticates the caller and returns the node id it may see, or fleet.
func (c *csds) scope(ctx context.Context) (string, error) {
	tok, err := bearerToken(ctx)
	if err != nil {
		return "", status.Error(codes.Unauthenticated, err.Error())
	}
	id, perr := c.s.opts.Auth.Authenticate(ctx, tok)
	if perr == nil {
		return id.NodeID(), nil
	}
	oa := c.s.operatorAuth()
	if oa == nil {
		return "", status.Errorf(codes.Unauthenticated, "not a proxy credential (%v); a proxy sees only its own node, and "+
			"there are no operator credentials in directory mode: the fleet view is on wardend's loopback debug API "+
			"(wardenctl status, /debug/syncz)", perr)
	}
	user, err := oa.Authorize(ctx, tok, "csds")
	if err == nil {
		return fleet, nil
	}
	code := codes.Unavailable
	switch {
	case errors.Is(err, ErrNotAuthenticated):
		code = codes.Unauthenticated
		err = errors.Join(err, perr)
	case errors.Is(err, ErrForbidden):
		code = codes.PermissionDenied
	}
	src := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		src = p.Addr.String()
	}
	oa.LogDenied(sourceHost(src), "CSDS request refused", "code", code.String(), "user", user, "source", src, "error", err.Error())
	return "", status.Error(code, err.Error())
}

func (c *csds) FetchClientStatus(ctx context.Context, req *statusv3.ClientStatusRequest) (*statusv3.ClientStatusResponse, error) {
	node, err := c.scope(ctx)
	if err != nil {
		return nil, err
	}
	return c.s.clientStatus(node), nil
}

func (c *csds) StreamClientStatus(stream grpc.BidiStreamingServer[statusv3.ClientStatusRequest, statusv3.ClientStatusResponse]) error {
	node, err := c.scope(stream.Context())
	if err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := stream.Send(c.s.clientStatus(node)); err != nil {
			return err
		}
	}
}

var csdsStatus = map[string]statusv3.ConfigStatus{
	StatusSynced:  statusv3.ConfigStatus_SYNCED,
	StatusStale:   statusv3.ConfigStatus_STALE,
	StatusNotSent: statusv3.ConfigStatus_NOT_SENT,
	StatusError:   statusv3.ConfigStatus_ERROR,
}

var shortToURL = func() map[string]string {
	m := map[string]string{}
	for url, short := range shortTypes {
		m[short] = url
	}
	return m
}()

// ClientStatus renders the tracker as a CSDS response (one ClientConfig per proxy).
func (s *Server) ClientStatus() *statusv3.ClientStatusResponse { return s.clientStatus(fleet) }

// clientStatus renders one node (every node for fleet) as a CSDS response.
func (s *Server) clientStatus(node string) *statusv3.ClientStatusResponse {
	resp := &statusv3.ClientStatusResponse{}
	for _, p := range s.tracker.Snapshot() {
		if node != fleet && p.ID != node {
			continue
		}
		cc := &statusv3.ClientConfig{Node: &core.Node{Id: p.ID, Cluster: p.Namespace}, ClientScope: p.Wardend}
		for _, short := range ShortTypes {
			ts := p.Types[short]
			g := &statusv3.ClientConfig_GenericXdsConfig{TypeUrl: shortToURL[short], VersionInfo: ts.Sent,
				ConfigStatus: csdsStatus[ts.Status]}
			switch {
			case ts.Status == StatusError:
				g.ClientStatus = adminv3.ClientResourceStatus_NACKED
				g.ErrorState = &adminv3.UpdateFailureState{Details: ts.Error, VersionInfo: ts.Sent,
					LastUpdateAttempt: timestamppb.New(ts.ErrorAt)}
			case ts.Acked != "" && ts.Acked == ts.Sent:
				g.ClientStatus = adminv3.ClientResourceStatus_ACKED
			case ts.Sent != "":
				g.ClientStatus = adminv3.ClientResourceStatus_REQUESTED
			}
			if !ts.LastAckAt.IsZero() {
				g.LastUpdated = timestamppb.New(ts.LastAckAt)
			}
			cc.GenericXdsConfigs = append(cc.GenericXdsConfigs, g)
		}
		resp.Config = append(resp.Config, cc)
	}
	return resp
}
