package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// TestGRPCExtAuthz serves an extAuthzGrpc app on a real listener and calls it as
// Envoy's ext_authz filter does: a gRPC Check over cleartext HTTP/2. The readiness
// probe (HTTP/1 GET) still gets an answer.
func TestGRPCExtAuthz(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, slog.New(slog.DiscardHandler), appConfig{ExtAuthzGrpc: true, ExtAuthzAllowServiceAccount: "sleep"}, []net.Listener{ln}, nil)
	}()
	defer func() { cancel(); <-done }()

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := authv3.NewAuthorizationClient(conn)
	send := func(attrs *authv3.AttributeContext) *authv3.CheckResponse {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		resp, err := c.Check(cctx, &authv3.CheckRequest{Attributes: attrs})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	tcpFrom := func(principal string) *authv3.CheckResponse {
		t.Helper()
		return send(&authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{Principal: principal}})
	}
	check := func(headers map[string]string) *authv3.CheckResponse {
		t.Helper()
		return send(&authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Headers: headers, Path: "/x"}},
		})
	}
	ok := check(map[string]string{"x-ext-authz": "allow"})
	if ok.GetStatus().GetCode() != int32(codes.OK) || ok.GetOkResponse().GetHeaders()[0].GetHeader().GetValue() != "allowed" {
		t.Errorf("allow: %v", ok)
	}
	denied := check(map[string]string{"x-ext-authz": "deny"})
	if denied.GetStatus().GetCode() != int32(codes.PermissionDenied) || denied.GetDeniedResponse().GetStatus().GetCode() != 403 ||
		denied.GetDeniedResponse().GetHeaders()[0].GetHeader().GetValue() != "denied" {
		t.Errorf("deny: %v", denied)
	}
	if tcp := check(nil); tcp.GetStatus().GetCode() != int32(codes.PermissionDenied) {
		t.Errorf("no headers: %v", tcp)
	}
	// TCP checks carry no HTTP attributes: only the allowed service account passes,
	// and only as the last path segment (not a namespace or a longer name).
	if got := tcpFrom("spiffe://cluster.local/ns/foo/sa/sleep"); got.GetStatus().GetCode() != int32(codes.OK) {
		t.Errorf("tcp from sa sleep: %v", got)
	}
	for _, p := range []string{"spiffe://cluster.local/ns/foo/sa/other", "spiffe://cluster.local/ns/sleep/sa/x", "spiffe://cluster.local/ns/foo/sa/nosleep", ""} {
		if got := tcpFrom(p); got.GetStatus().GetCode() != int32(codes.PermissionDenied) {
			t.Errorf("tcp from %q: %v, want denied", p, got)
		}
	}
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("probe: status %d, want 403 (the HTTP ext_authz answer)", resp.StatusCode)
	}
}
