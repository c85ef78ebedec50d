package translate

import (
	"testing"

	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	grpcal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"

	"github.com/wardenmesh/warden/internal/meshtest"
	"github.com/wardenmesh/warden/internal/wardendgrpc"
)

// TestAccessLogsOnEveryInboundChain: every HCM and tcp_proxy of virtualInbound sends
// to wardend, tagged with its filter chain, denials only unless the MeshConfig sets
// accessLogFile (then everything, and the file too).
func TestAccessLogsOnEveryInboundChain(t *testing.T) {
	sink := &AccessLogSink{Target: "wardend:15012", ServerName: "wardend.warden-system.svc", RootPEM: []byte("root"), TokenFile: "/t"}
	for _, tc := range []struct {
		name, mesh string
		loggers    int
		filtered   bool
	}{
		{"denials", "", 1, true},
		{"full", "accessLogFile: /dev/stdout\n", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs := []string{meshtest.Httpbin, meshtest.PeerAuthentication("default", "foo", "{mtls: {mode: PERMISSIVE}}")}
			if tc.mesh != "" {
				docs = append(docs, meshtest.MeshConfig(tc.mesh))
			}
			out := Translate(meshtest.Input(t, meshtest.Join(docs...)), Proxy{ID: "httpbin.foo", Namespace: "foo", Pod: "httpbin", AccessLog: sink})
			for _, d := range out.Diagnostics {
				if d.Severity == "error" {
					t.Fatalf("diagnostic %+v", d)
				}
			}
			var l *listener.Listener
			for _, r := range out.Listeners {
				if r.(*listener.Listener).GetName() == inboundListenerName {
					l = r.(*listener.Listener)
				}
			}
			if l == nil {
				t.Fatal("no virtualInbound")
			}
			seen := map[string]int{}
			for _, fc := range l.GetFilterChains() {
				for _, f := range fc.GetFilters() {
					var logs []*accesslog.AccessLog
					switch f.GetName() {
					case wellknown.HTTPConnectionManager:
						m := &hcm.HttpConnectionManager{}
						if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
							t.Fatal(err)
						}
						logs = m.GetAccessLog()
					case wellknown.TCPProxy:
						m := &tcpproxy.TcpProxy{}
						if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
							t.Fatal(err)
						}
						logs = m.GetAccessLog()
					default:
						continue
					}
					seen[f.GetName()]++
					if len(logs) != tc.loggers {
						t.Fatalf("chain %s %s: %d loggers, want %d", fc.GetName(), f.GetName(), len(logs), tc.loggers)
					}
					want := tcpGrpcLogger
					if f.GetName() == wellknown.HTTPConnectionManager {
						want = httpGrpcLogger
					}
					filtered := tc.filtered && fc.GetFilterChainMatch().GetTransportProtocol() != "raw_buffer"
					if logs[0].GetName() != want || (logs[0].GetFilter() != nil) != filtered {
						t.Errorf("chain %s: logger %s filtered=%v", fc.GetName(), logs[0].GetName(), logs[0].GetFilter() != nil)
					}
					if f := logs[0].GetFilter(); f != nil {
						cel := false
						for _, sub := range f.GetOrFilter().GetFilters() {
							cel = cel || sub.GetExtensionFilter().GetName() == celFilter
						}
						// A connection RBAC closed has no response flag: only its termination details say so.
						if want == tcpGrpcLogger && !cel {
							t.Errorf("chain %s: the TCP logger's filter does not match RBAC's termination details", fc.GetName())
						}
						for _, sub := range f.GetOrFilter().GetFilters() {
							if md := sub.GetMetadataFilter(); md != nil && (md.GetMatchIfKeyNotFound() == nil || md.GetMatchIfKeyNotFound().GetValue()) {
								t.Errorf("chain %s: a metadata filter matches entries without its key: everything is logged", fc.GetName())
							}
						}
					}
					var common *grpcal.CommonGrpcAccessLogConfig
					if want == httpGrpcLogger {
						c := &grpcal.HttpGrpcAccessLogConfig{}
						_ = logs[0].GetTypedConfig().UnmarshalTo(c)
						common = c.GetCommonConfig()
					} else {
						c := &grpcal.TcpGrpcAccessLogConfig{}
						_ = logs[0].GetTypedConfig().UnmarshalTo(c)
						common = c.GetCommonConfig()
					}
					if tags := common.GetCustomTags(); len(tags) != 1 || tags[0].GetTag() != FilterChainTagKey || tags[0].GetLiteral().GetValue() != fc.GetName() {
						t.Errorf("chain %s: tags %v", fc.GetName(), tags)
					}
					if g := common.GetGrpcService().GetGoogleGrpc(); g.GetTargetUri() != sink.Target || g.GetCredentialsFactoryName() != wardendgrpc.FileCredentials {
						t.Errorf("chain %s: grpc service %v", fc.GetName(), g)
					}
				}
			}
			if seen[wellknown.HTTPConnectionManager] == 0 || seen[wellknown.TCPProxy] == 0 {
				t.Errorf("want both HTTP and TCP chains, saw %v", seen)
			}
		})
	}
	// Without a sink and without accessLogFile, nothing is added.
	out := Translate(meshtest.Input(t, meshtest.Httpbin), Proxy{ID: "httpbin.foo", Namespace: "foo", Pod: "httpbin"})
	for _, r := range out.Listeners {
		for _, fc := range r.(*listener.Listener).GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetName() == wellknown.HTTPConnectionManager {
					m := &hcm.HttpConnectionManager{}
					_ = f.GetTypedConfig().UnmarshalTo(m)
					if len(m.GetAccessLog()) != 0 {
						t.Errorf("chain %s has access logs without a sink", fc.GetName())
					}
				}
			}
		}
	}
}

// TestAccessLogsOnGatewayChains: an ingress gateway's HCMs (and whatever tcp_proxy
// its chains carry) send their denials to wardend like a sidecar's, tagged with the
// chain; a gateway has no plaintext chain of a PERMISSIVE port, so every logger is
// filtered to denials.
func TestAccessLogsOnGatewayChains(t *testing.T) {
	sink := &AccessLogSink{Target: "wardend:15012", ServerName: "wardend.warden-system.svc", RootPEM: []byte("root"), TokenFile: "/t"}
	out := Translate(loadCase(t, "gateway-host-port"), Proxy{Namespace: "istio-system", Pod: "istio-ingressgateway", Gateway: true, AccessLog: sink})
	n := 0
	for _, r := range out.Listeners {
		for _, fc := range r.(*listener.Listener).GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var logs []*accesslog.AccessLog
				switch f.GetName() {
				case wellknown.HTTPConnectionManager:
					m := &hcm.HttpConnectionManager{}
					if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
						t.Fatal(err)
					}
					logs = m.GetAccessLog()
				case wellknown.TCPProxy:
					m := &tcpproxy.TcpProxy{}
					if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
						t.Fatal(err)
					}
					logs = m.GetAccessLog()
				default:
					continue
				}
				n++
				if len(logs) != 1 || logs[0].GetFilter() == nil {
					t.Errorf("gateway chain %s %s: loggers %v, want one filtered to denials", fc.GetName(), f.GetName(), logs)
				}
			}
		}
	}
	if n == 0 {
		t.Fatalf("no gateway chain with an HCM or tcp_proxy: %v", out.Diagnostics)
	}
}
