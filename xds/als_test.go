package xds

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	alsdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wardenmesh/warden/internal/poll"
)

// alsStream opens an access log stream with token (none when "").
func (ts *testServer) alsStream(t testing.TB, token string) alsv3.AccessLogService_StreamAccessLogsClient {
	t.Helper()
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: ts.ca.Roots(), ServerName: "wardend"})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	st, err := alsv3.NewAccessLogServiceClient(conn).StreamAccessLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func nodeOf(t testing.TB, id Identity) *core.Node {
	md, err := NodeMetadata(id, nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return &core.Node{Id: id.NodeID(), Metadata: md}
}

// deniedHTTP is an entry as Envoy's http_grpc logger sends it for a request the
// RBAC filter denied, with a dry-run DENY rule matching too.
func deniedHTTP(t testing.TB, path string) *alsdata.HTTPAccessLogEntry {
	shadow, err := structpb.NewStruct(map[string]any{
		"istio_dry_run_deny_shadow_engine_result":       "denied",
		"istio_dry_run_deny_shadow_effective_policy_id": "ns[shop]-policy[dry]-rule[0]",
	})
	if err != nil {
		t.Fatal(err)
	}
	sock := func(ip string, port uint32) *core.Address {
		return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{Address: ip,
			PortSpecifier: &core.SocketAddress_PortValue{PortValue: port}}}}
	}
	return &alsdata.HTTPAccessLogEntry{
		CommonProperties: &alsdata.AccessLogCommon{
			DownstreamRemoteAddress: sock("10.0.0.7", 40000),
			DownstreamLocalAddress:  sock("10.0.0.9", 8080),
			TlsProperties: &alsdata.TLSProperties{PeerCertificateProperties: &alsdata.TLSProperties_CertificateProperties{
				SubjectAltName: []*alsdata.TLSProperties_CertificateProperties_SubjectAltName{{
					San: &alsdata.TLSProperties_CertificateProperties_SubjectAltName_Uri{Uri: "spiffe://cluster.local/ns/shop/sa/web"}}}}},
			Metadata:   &core.Metadata{FilterMetadata: map[string]*structpb.Struct{rbacHTTPNamespace: shadow}},
			CustomTags: map[string]string{FilterChainTag: "0.0.0.0_8080"},
		},
		Request: &alsdata.HTTPRequestProperties{RequestMethod: core.RequestMethod_GET, Path: path, Authority: "api"},
		Response: &alsdata.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(403),
			ResponseCodeDetails: "rbac_access_denied_matched_policy[ns[shop]-policy[deny-admin]-rule[0]]"},
	}
}

func httpLogs(es ...*alsdata.HTTPAccessLogEntry) *alsv3.StreamAccessLogsMessage_HttpLogs {
	return &alsv3.StreamAccessLogsMessage_HttpLogs{HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: es}}
}

// waitEntries polls the window until it holds n entries.
func waitEntries(t *testing.T, w *AccessWindow, n int) []AccessEntry {
	t.Helper()
	var got []AccessEntry
	if err := poll.Until(context.Background(), 10*time.Second, func() (bool, error) {
		got = w.Entries(time.Time{}, nil)
		return len(got) >= n, nil
	}); err != nil {
		t.Fatalf("window holds %d entries, want %d", len(got), n)
	}
	return got
}

func TestAccessLogHeldToProvenIdentity(t *testing.T) {
	ts := startServer(t)
	api := Identity{Namespace: "shop", ServiceAccount: "api", Pod: "api-0"}
	web := Identity{Namespace: "shop", ServiceAccount: "web", Pod: "web-0"}

	// The proxy's own identity: accepted, attributed to it.
	st := ts.alsStream(t, ts.token(t, api))
	if err := st.Send(&alsv3.StreamAccessLogsMessage{Identifier: &alsv3.StreamAccessLogsMessage_Identifier{
		Node: nodeOf(t, api), LogName: "warden"}, LogEntries: httpLogs(deniedHTTP(t, "/admin"))}); err != nil {
		t.Fatal(err)
	}
	// Later messages carry no identifier and stay bound to api-0.
	if err := st.Send(&alsv3.StreamAccessLogsMessage{LogEntries: httpLogs(deniedHTTP(t, "/admin/2"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CloseAndRecv(); err != nil {
		t.Fatalf("own identity refused: %v", err)
	}
	got := waitEntries(t, ts.srv.AccessLog(), 2)
	e := got[0]
	if e.Proxy != "api-0.shop" || !e.Denied || e.Policy != "ns[shop]-policy[deny-admin]-rule[0]" ||
		!e.DryRunDenied || e.DryRunPolicy != "ns[shop]-policy[dry]-rule[0]" || e.Peer != "spiffe://cluster.local/ns/shop/sa/web" ||
		e.FilterChain != "0.0.0.0_8080" || e.Port != 8080 || e.Source != "10.0.0.7:40000" || e.Status != 403 {
		t.Errorf("entry %+v", e)
	}

	refused := func(name string, token string, msgs []*alsv3.StreamAccessLogsMessage, want codes.Code, wantMsg string, grow ...int) {
		t.Helper()
		before := len(ts.srv.AccessLog().Entries(time.Time{}, nil))
		st := ts.alsStream(t, token)
		for _, m := range msgs {
			if err := st.Send(m); err != nil {
				break // the server already ended the stream; CloseAndRecv returns its status
			}
		}
		_, err := st.CloseAndRecv()
		if status.Code(err) != want || !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("%s: got %v, want %v containing %q", name, err, want, wantMsg)
		}
		if after := len(ts.srv.AccessLog().Entries(time.Time{}, nil)); after != before+len(grow) {
			t.Errorf("%s: window grew from %d to %d entries", name, before, after)
		}
	}
	claim := func(n *core.Node) []*alsv3.StreamAccessLogsMessage {
		return []*alsv3.StreamAccessLogsMessage{{Identifier: &alsv3.StreamAccessLogsMessage_Identifier{Node: n, LogName: "warden"},
			LogEntries: httpLogs(deniedHTTP(t, "/forged"))}}
	}
	// api-0's credential claiming web-0's node: rejected, nothing recorded.
	refused("other node", ts.token(t, api), claim(nodeOf(t, web)), codes.PermissionDenied, `node id "web-0.shop"`)
	// The right node id, but metadata naming another workload.
	forged := nodeOf(t, api)
	forged.Metadata.Fields[MetaServiceAccount] = structpb.NewStringValue("web")
	refused("other service account", ts.token(t, api), claim(forged), codes.PermissionDenied, "SERVICE_ACCOUNT")
	// No credential, and a forged one.
	refused("no token", "", claim(nodeOf(t, api)), codes.Unauthenticated, "authorization")
	refused("bad token", "not-a-token", claim(nodeOf(t, api)), codes.Unauthenticated, "")
	// Entries before any identifier.
	refused("no identifier", ts.token(t, api), []*alsv3.StreamAccessLogsMessage{{LogEntries: httpLogs(deniedHTTP(t, "/x"))}},
		codes.InvalidArgument, "identifier")
	// A later message switching to another node closes the stream.
	refused("switch node", ts.token(t, api), append(claim(nodeOf(t, api)), claim(nodeOf(t, web))...), codes.PermissionDenied, "web-0", 1) // the first, own message is kept
	for _, e := range ts.srv.AccessLog().Entries(time.Time{}, nil) {
		if e.Proxy != "api-0.shop" {
			t.Errorf("entry attributed to %s", e.Proxy)
		}
	}

	// The debug API's view of the same window.
	var resp DenialsResponse
	getJSON(t, ts.srv.DebugHandler(), "/debug/denials?pod=api-0.shop&since=1h", &resp)
	if len(resp.Counts) != 1 || resp.Counts[0].Policy != "ns[shop]-policy[deny-admin]-rule[0]" || resp.Counts[0].Count != 3 {
		t.Errorf("denials %+v", resp.Counts)
	}
	getJSON(t, ts.srv.DebugHandler(), "/debug/denials?dryRun=true", &resp)
	if len(resp.Counts) != 1 || resp.Counts[0].Policy != "ns[shop]-policy[dry]-rule[0]" {
		t.Errorf("dry-run denials %+v", resp.Counts)
	}
	getJSON(t, ts.srv.DebugHandler(), "/debug/denials?pod=web-0.shop", &resp)
	if len(resp.Entries) != 0 {
		t.Errorf("web-0 has %d entries, want none", len(resp.Entries))
	}
	rec := httptest.NewRecorder()
	ts.srv.DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/denials?since=yesterday", nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "since") {
		t.Errorf("bad since: %d %s", rec.Code, rec.Body)
	}
}
