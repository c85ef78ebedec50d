package main

import (
	"context"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The gRPC health service of the gRPC ext_authz app (for probes of kind grpc): the
// server ("") and healthServing are SERVING, healthNotServing is NOT_SERVING, any other
// service is unknown (NOT_FOUND).
const (
	healthServing    = "warden.e2e.Serving"
	healthNotServing = "warden.e2e.NotServing"
)

// grpcAuthz is an envoy.service.auth.v3.Authorization server with the decision of the
// HTTP ext_authz server: an HTTP check request carrying `x-ext-authz: allow` is
// allowed, and the request then reaches the app with `x-ext-authz-check-result:
// allowed`; any other is denied with 403, `x-ext-authz-check-result: denied` and body
// "denied by ext_authz (grpc)". A check whose source principal is the service account
// allowSA (`<td>/ns/<ns>/sa/<allowSA>`) is allowed too; so a check without HTTP
// attributes (a TCP connection) is allowed only from that service account. This is how
// Istio's sample ext-authz server answers gRPC checks (samples/extauthz,
// -allow_service_account).
type grpcAuthz struct {
	authv3.UnimplementedAuthorizationServer
	allowSA string
}

func (g grpcAuthz) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	bySA := g.allowSA != "" && strings.HasSuffix(req.GetAttributes().GetSource().GetPrincipal(), "/sa/"+g.allowSA)
	if bySA || h != nil && h.GetHeaders()[extAuthzHeader] == "allow" {
		return &authv3.CheckResponse{
			Status: &status.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers: []*corev3.HeaderValueOption{checkResult("allowed")},
			}},
		}, nil
	}
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
			Headers: []*corev3.HeaderValueOption{checkResult("denied")},
			Body:    "denied by ext_authz (grpc)\n",
		}},
	}, nil
}

func checkResult(v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-ext-authz-check-result", Value: v}}
}

// grpcAuthzHandler serves the Authorization and Health services to gRPC calls (HTTP/2 with a
// gRPC content type, in cleartext) and hands every other request, such as the
// runner's readiness probe, to next.
func grpcAuthzHandler(allowSA string, next http.Handler) http.Handler {
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, grpcAuthz{allowSA: allowSA})
	hs := health.NewServer()
	hs.SetServingStatus(healthServing, healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(healthNotServing, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			s.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
