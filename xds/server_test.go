package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/wardenmesh/warden/internal/meshtest"

	"github.com/wardenmesh/warden/translate"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/wardenmesh/warden/certs"
)

type testServer struct {
	addr   string
	ca     *certs.CA
	signer *certs.TokenSigner
	srv    *Server
}

func startServer(t testing.TB, opts ...func(*Options)) *testServer {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.LoadOrCreateCA(dir, "cluster.local", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := certs.LoadOrCreateTokenKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	wid, _ := WardendID(ca.TrustDomain(), "warden-system")
	serving := &ServingCert{CA: ca, ID: wid, TTL: time.Hour, DNS: []string{"wardend"}}
	o2 := Options{Log: slog.New(slog.DiscardHandler), Auth: &BootstrapTokenAuth{Signer: signer},
		Secrets: &CertSecrets{CA: ca, Store: certs.NewStore(ca, time.Hour, time.Now)}, Replica: "test", ServerCert: serving.Get}
	for _, o := range opts {
		o(&o2)
	}
	s := New(o2)
	s.SetInput(meshtest.Input(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, lis); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &testServer{addr: lis.Addr().String(), ca: ca, signer: signer, srv: s}
}

// stream opens an ADS stream as a proxy with the given token and node identity.
func (ts *testServer) stream(t *testing.T, token string, node Identity) discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
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
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := NodeMetadata(node, nil, nil, false)
	if err := st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: node.NodeID(), Metadata: md},
		TypeUrl: resource.SecretType, ResourceNames: []string{translate.SecretDefault, translate.SecretRootCA}}); err != nil && err != io.EOF {
		// io.EOF: the server already ended the stream (a refused credential); Recv
		// returns its status.
		t.Fatal(err)
	}
	return st
}

func (ts *testServer) token(t testing.TB, id Identity) string {
	t.Helper()
	tok, err := ts.signer.Sign(certs.TokenClaims{Namespace: id.Namespace, ServiceAccount: id.ServiceAccount, Pod: id.Pod}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestProxyGetsOnlyItsOwnIdentity(t *testing.T) {
	ts := startServer(t)
	web := Identity{Namespace: "shop", ServiceAccount: "web", Pod: "web-0"}
	st := ts.stream(t, ts.token(t, web), web)
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResources()) != 2 {
		t.Fatalf("got %d secrets, want the two requested", len(resp.GetResources()))
	}
	sec := &tlsv3.Secret{}
	for _, r := range resp.GetResources() {
		s := &tlsv3.Secret{}
		if err := r.UnmarshalTo(s); err != nil {
			t.Fatal(err)
		}
		if s.GetName() == translate.SecretDefault {
			sec = s
		}
	}
	block, _ := pem.Decode(sec.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cluster.local/ns/shop/sa/web" {
		t.Fatalf("served SVID %v, want the token's identity", leaf.URIs)
	}
}

func TestStreamsThatCannotProveIdentityGetNothing(t *testing.T) {
	ts := startServer(t)
	web := Identity{Namespace: "shop", ServiceAccount: "web", Pod: "web-0"}
	admin := Identity{Namespace: "shop", ServiceAccount: "admin", Pod: "admin-0"}
	other := startServer(t) // a token signed by another wardend's key
	for name, tc := range map[string]struct {
		token string
		node  Identity
		code  codes.Code
	}{
		"no token":                       {"", web, codes.Unauthenticated},
		"token of another control plane": {other.token(t, web), web, codes.Unauthenticated},
		"web's token claiming admin":     {ts.token(t, web), admin, codes.PermissionDenied},
	} {
		t.Run(name, func(t *testing.T) {
			st := ts.stream(t, tc.token, tc.node)
			resp, err := st.Recv()
			if err == nil {
				t.Fatalf("got a response (%d resources), want %v", len(resp.GetResources()), tc.code)
			}
			if err == io.EOF || status.Code(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
		})
	}
}

func TestRebuildOfSameInputPushesNothingAndRotationOnlySDS(t *testing.T) {
	ts := startServer(t)
	web := Identity{Namespace: "shop", ServiceAccount: "web", Pod: "web-0"}
	st := ts.stream(t, ts.token(t, web), web)
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	before := ts.srv.tracker.Snapshot()[0].Types
	changed, err := ts.srv.rebuild("web-0.shop")
	if err != nil || changed {
		t.Fatalf("rebuild of the same input: changed=%v err=%v, want no push", changed, err)
	}
	// A new certificate (as at rotation) changes SDS only.
	sid, _ := certs.WorkloadID(ts.ca.TrustDomain(), "shop", "web")
	ts.srv.opts.Secrets.(*CertSecrets).Store.Forget(sid)
	if changed, err := ts.srv.rebuild("web-0.shop"); err != nil || !changed {
		t.Fatalf("rebuild after a new certificate: changed=%v err=%v", changed, err)
	}
	after := ts.srv.tracker.Snapshot()[0].Types
	for _, typ := range ShortTypes {
		moved := before[typ].Intended != after[typ].Intended
		if moved != (typ == "SDS") {
			t.Errorf("%s intended %s -> %s: only SDS may change on rotation", typ, before[typ].Intended, after[typ].Intended)
		}
	}
}
