package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/watch"
)

const clientID = "spiffe://cluster.local/ns/bench/sa/client"

// BenchmarkRBACPrincipals reports p50 and p99 latency of HTTPS requests (mTLS, kept
// alive) through stock Envoy whose HCM carries the HTTP filters Warden generates for
// the workload: none, or an ALLOW policy of 1,000 principals with the caller last.
func BenchmarkRBACPrincipals(b *testing.B) {
	envoy := envoyBinary(b)
	p := newPKI(b, clientID)
	for _, tc := range []struct {
		name       string
		principals int
	}{{"no-policy", 0}, {"1000-principals", 1000}} {
		b.Run(tc.name, func(b *testing.B) {
			filters := generatedFilters(b, tc.principals)
			if tc.principals > 0 && len(filters) == 0 {
				b.Fatal("no RBAC filter was generated for the policy")
			}
			port := startEnvoy(b, envoy, p, filters)
			client := &http.Client{Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{Certificates: []tls.Certificate{p.client}, RootCAs: p.pool, MinVersion: tls.VersionTLS12},
				MaxIdleConnsPerHost: 1,
			}}
			url := fmt.Sprintf("https://127.0.0.1:%d/items", port)
			for range 200 { // warm up the connection and Envoy
				get(b, client, url)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				get(b, client, url)
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			p50, p99 := lat[len(lat)*50/100], lat[min(len(lat)*99/100, len(lat)-1)]
			b.ReportMetric(float64(p50.Microseconds()), "p50-us")
			b.ReportMetric(float64(p99.Microseconds()), "p99-us")
			b.Logf("%s: %d requests, p50 %v, p99 %v", tc.name, len(lat), p50, p99)
		})
	}
}

func get(tb testing.TB, c *http.Client, url string) {
	r, err := c.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s (the caller must be allowed)", url, r.Status)
	}
}

// generatedFilters translates a workload with an ALLOW policy of n principals (none
// when n is 0) and returns the policy filters of its inbound HTTP chain.
func generatedFilters(tb testing.TB, n int) []*hcm.HttpFilter {
	tb.Helper()
	var sb strings.Builder
	sb.WriteString(`apiVersion: v1
kind: Namespace
metadata: {name: bench, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: bench, labels: {app: server}}
spec: {containers: [{name: app, image: x, ports: [{name: http, containerPort: 8080}]}]}
`)
	if n > 0 {
		sb.WriteString("---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: many, namespace: bench}\nspec:\n  rules:\n  - from:\n    - source:\n        principals:\n")
		for i := range n - 1 {
			fmt.Fprintf(&sb, "        - cluster.local/ns/team-%d/sa/caller-%d\n", i, i)
		}
		sb.WriteString("        - cluster.local/ns/bench/sa/client\n")
	}
	objs, diags := watch.DecodeFile("bench.yaml", []byte(sb.String()))
	out := translate.Translate(watch.Build(objs, diags), translate.Proxy{ID: "server.bench", Namespace: "bench", Pod: "server"})
	for _, r := range out.Listeners {
		l := r.(*listener.Listener)
		if l.GetName() != "virtualInbound" {
			continue
		}
		for _, fc := range l.GetFilterChains() {
			if fc.GetName() != "0.0.0.0_8080" {
				continue
			}
			m := &hcm.HttpConnectionManager{}
			if err := fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(m); err != nil {
				tb.Fatal(err)
			}
			return slices.DeleteFunc(m.GetHttpFilters(), func(f *hcm.HttpFilter) bool { return f.GetName() == "envoy.filters.http.router" })
		}
	}
	tb.Fatalf("no inbound chain 0.0.0.0_8080 was generated: %v", out.Diagnostics)
	return nil
}

// startEnvoy runs Envoy with one mTLS listener on loopback whose HCM has filters,
// then a direct 200 response; it returns the port once Envoy accepts connections.
func startEnvoy(tb testing.TB, bin string, p *pki, filters []*hcm.HttpFilter) int {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()

	inline := func(b []byte) *core.DataSource {
		return &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: b}}
	}
	tlsCtx := mustAny(tb, &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificates:       []*tlsv3.TlsCertificate{{CertificateChain: inline(p.serverCert), PrivateKey: inline(p.serverKey)}},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: inline(p.caPEM)}},
		},
	})
	routerAny := mustAny(tb, &router.Router{})
	m := &hcm.HttpConnectionManager{
		StatPrefix: "bench",
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
			VirtualHosts: []*route.VirtualHost{{Name: "bench", Domains: []string{"*"}, Routes: []*route.Route{{
				Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: 200, Body: inline([]byte("ok"))}},
			}}}},
		}},
		HttpFilters: append(slices.Clone(filters), &hcm.HttpFilter{Name: "envoy.filters.http.router", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: routerAny}}),
	}
	bs := &bootstrap.Bootstrap{LayeredRuntime: re2Runtime(), StaticResources: &bootstrap.Bootstrap_StaticResources{Listeners: []*listener.Listener{{
		Name: "bench",
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
		}}},
		FilterChains: []*listener.FilterChain{{
			TransportSocket: &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: tlsCtx}},
			Filters: []*listener.Filter{{Name: "envoy.filters.network.http_connection_manager",
				ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(tb, m)}}},
		}},
	}}}}
	js, err := protojson.Marshal(bs)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	cfg := filepath.Join(dir, "envoy.json")
	if err := os.WriteFile(cfg, js, 0o600); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-c", cfg, "--concurrency", "1", "--use-dynamic-base-id", "-l", "error")
	logf, err := os.Create(filepath.Join(dir, "envoy.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start envoy: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		cancel()
		<-exited
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return port
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(filepath.Join(dir, "envoy.log"))
			tb.Fatalf("envoy exited (%v):\n%.2000s", waitErr, out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("envoy did not listen on %d within 30s", port)
		}
	}
}

func mustAny(tb testing.TB, m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// envoyBinary is $WARDEN_ENVOY, else the project's .venv/bin/envoy.
func envoyBinary(tb testing.TB) string {
	if p := os.Getenv("WARDEN_ENVOY"); p != "" {
		return p
	}
	p, err := filepath.Abs("../../.venv/bin/envoy")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("stock Envoy not found at %s (run make deps, or set WARDEN_ENVOY): %v", p, err)
	}
	return p
}

// re2Runtime raises Envoy's RE2 program-size limits (default error level 100) to
// Istio's bootstrap values, as wardend's bootstrap must, so that one regular
// expression can hold many principals.
func re2Runtime() *bootstrap.LayeredRuntime {
	layer, err := structpb.NewStruct(map[string]any{
		"re2.max_program_size.error_level": 32768,
		"re2.max_program_size.warn_level":  32768,
	})
	if err != nil {
		panic(err)
	}
	return &bootstrap.LayeredRuntime{Layers: []*bootstrap.RuntimeLayer{{
		Name: "re2", LayerSpecifier: &bootstrap.RuntimeLayer_StaticLayer{StaticLayer: layer},
	}}}
}
