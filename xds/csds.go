package xds

import (
	"context"
	"io"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// csds serves sync status through Envoy's standard Client Status Discovery Service,
// on the authenticated xDS port, so tools other than wardenctl can read it.
type csds struct {
	statusv3.UnimplementedClientStatusDiscoveryServiceServer
	s *Server
}

func registerCSDS(gs *grpc.Server, s *Server) {
	statusv3.RegisterClientStatusDiscoveryServiceServer(gs, &csds{s: s})
}

func (c *csds) authorize(ctx context.Context) error {
	tok, err := bearerToken(ctx)
	if err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	if _, err := c.s.opts.Auth.Authenticate(ctx, tok); err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	return nil
}

func (c *csds) FetchClientStatus(ctx context.Context, req *statusv3.ClientStatusRequest) (*statusv3.ClientStatusResponse, error) {
	if err := c.authorize(ctx); err != nil {
		return nil, err
	}
	return c.s.ClientStatus(), nil
}

func (c *csds) StreamClientStatus(stream grpc.BidiStreamingServer[statusv3.ClientStatusRequest, statusv3.ClientStatusResponse]) error {
	if err := c.authorize(stream.Context()); err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := stream.Send(c.s.ClientStatus()); err != nil {
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
func (s *Server) ClientStatus() *statusv3.ClientStatusResponse {
	resp := &statusv3.ClientStatusResponse{}
	for _, p := range s.tracker.Snapshot() {
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
