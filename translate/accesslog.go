package translate

import (
	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	fileal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	celfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	grpcal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	tracing "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wardenmesh/warden/internal/wardendgrpc"
)

// AccessLogSink is how a proxy reaches wardend's access log service: the same
// address, server name, trusted root and token file as its xDS connection (the
// bootstrap says so in the node metadata), so the log stream proves the same identity.
type AccessLogSink struct {
	Target     string // host:port
	ServerName string
	RootPEM    []byte
	TokenFile  string
}

// Names the access loggers and their filter chain tag use; xds reads the same.
const (
	AccessLogName     = "warden"
	FilterChainTagKey = "warden.filter_chain"
	httpGrpcLogger    = "envoy.access_loggers.http_grpc"
	tcpGrpcLogger     = "envoy.access_loggers.tcp_grpc"
	fileLogger        = "envoy.access_loggers.file"
	celFilter         = "envoy.access_loggers.extension_filters.cel"
	// tcpDeniedExpression matches a connection the network RBAC filter closed: it sets
	// no response flag, only the termination details (rbac_access_denied_matched_policy[<id>]).
	tcpDeniedExpression = "connection.termination_details.startsWith('rbac_access_denied_matched_policy[')"
	// rbac filters' metadata namespaces and the dry-run shadow result keys (authz).
	rbacHTTPMetadata   = "envoy.filters.http.rbac"
	rbacTCPMetadata    = "envoy.filters.network.rbac"
	dryRunDenyResult   = "istio_dry_run_deny_shadow_engine_result"
	dryRunAllowResult  = "istio_dry_run_allow_shadow_engine_result"
	accessLogFlushRate = 1 // seconds
)

// istioTextFormat is Istio's default text access log format.
const istioTextFormat = `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ` +
	`%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ` +
	`"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ` +
	`%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ` +
	`"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% ` +
	`%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%` + "\n"

// withAccessLogs gives every HCM and tcp_proxy of l's filter chains the access loggers:
// to wardend (denials and dry-run denials only, and every plaintext request of a
// PERMISSIVE port; everything when the MeshConfig sets accessLogFile), and to accessLogFile in Istio's text format. Each logger tags
// its entries with the chain's name. It is one pass over the finished listener, so
// whatever builds the chains needs no change.
func (b *builder) withAccessLogs(l *listener.Listener, sink *AccessLogSink) {
	file := b.in.Mesh.GetAccessLogFile()
	if sink == nil && file == "" {
		return
	}
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			tc := f.GetTypedConfig()
			if tc == nil {
				continue
			}
			switch f.GetName() {
			case wellknown.HTTPConnectionManager:
				m := &hcm.HttpConnectionManager{}
				if err := tc.UnmarshalTo(m); err != nil {
					b.err = err
					return
				}
				m.AccessLog = append(m.AccessLog, b.accessLoggers(fc.GetName(), true, sink, file, plaintextChain(fc))...)
				f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: b.any(m)}
			case wellknown.TCPProxy:
				t := &tcpproxy.TcpProxy{}
				if err := tc.UnmarshalTo(t); err != nil {
					b.err = err
					return
				}
				t.AccessLog = append(t.AccessLog, b.accessLoggers(fc.GetName(), false, sink, file, plaintextChain(fc))...)
				f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: b.any(t)}
			}
		}
	}
}

// plaintextChain is a PERMISSIVE port's (or the catch-all's) plaintext chain: its
// callers are what an operator checks before switching the port to STRICT, so wardend
// is sent every request there, not only denials.
func plaintextChain(fc *listener.FilterChain) bool {
	return fc.GetFilterChainMatch().GetTransportProtocol() == "raw_buffer" && fc.GetTransportSocket() == nil
}

func (b *builder) accessLoggers(chain string, http bool, sink *AccessLogSink, file string, plaintext bool) []*accesslog.AccessLog {
	var out []*accesslog.AccessLog
	if sink != nil {
		common := &grpcal.CommonGrpcAccessLogConfig{
			LogName:             AccessLogName,
			GrpcService:         b.alsService(sink),
			TransportApiVersion: core.ApiVersion_V3,
			BufferFlushInterval: duration(accessLogFlushRate * 1e9),
			CustomTags: []*tracing.CustomTag{{Tag: FilterChainTagKey,
				Type: &tracing.CustomTag_Literal_{Literal: &tracing.CustomTag_Literal{Value: chain}}}},
		}
		var cfg proto.Message = &grpcal.TcpGrpcAccessLogConfig{CommonConfig: common}
		name := tcpGrpcLogger
		if http {
			cfg, name = &grpcal.HttpGrpcAccessLogConfig{CommonConfig: common}, httpGrpcLogger
		}
		al := &accesslog.AccessLog{Name: name, ConfigType: &accesslog.AccessLog_TypedConfig{TypedConfig: b.any(cfg)}}
		if file == "" && !plaintext {
			al.Filter = b.denialsOnly(http)
		}
		out = append(out, al)
	}
	if file != "" {
		out = append(out, &accesslog.AccessLog{Name: fileLogger, ConfigType: &accesslog.AccessLog_TypedConfig{TypedConfig: b.any(&fileal.FileAccessLog{
			Path: file,
			AccessLogFormat: &fileal.FileAccessLog_LogFormat{LogFormat: &core.SubstitutionFormatString{
				Format: &core.SubstitutionFormatString_TextFormatSource{TextFormatSource: &core.DataSource{
					Specifier: &core.DataSource_InlineString{InlineString: istioTextFormat}}}}},
		})}})
	}
	return out
}

// denialsOnly logs what an RBAC filter denied (HTTP: the 403 it answers; TCP: a
// connection whose termination details name an RBAC policy) and what a dry-run policy would have denied
// (the dry-run filters' shadow result). wardend keeps only entries whose details
// name an RBAC decision, so an application's own 403 costs one entry, never a wrong one.
func (b *builder) denialsOnly(http bool) *accesslog.AccessLogFilter {
	ns := rbacTCPMetadata
	var first *accesslog.AccessLogFilter
	if http {
		ns = rbacHTTPMetadata
		first = &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_StatusCodeFilter{StatusCodeFilter: &accesslog.StatusCodeFilter{
			Comparison: &accesslog.ComparisonFilter{Op: accesslog.ComparisonFilter_EQ,
				Value: &core.RuntimeUInt32{DefaultValue: 403, RuntimeKey: "warden.access_log.denied_status"}}}}}
	} else {
		// The network RBAC filter sets no response flag on the connection it closes.
		first = &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_ExtensionFilter{ExtensionFilter: &accesslog.ExtensionFilter{
			Name:       celFilter,
			ConfigType: &accesslog.ExtensionFilter_TypedConfig{TypedConfig: b.any(&celfilter.ExpressionFilter{Expression: tcpDeniedExpression})},
		}}}
	}
	shadowDenied := func(key string) *accesslog.AccessLogFilter {
		return &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_MetadataFilter{MetadataFilter: &accesslog.MetadataFilter{
			Matcher: &matcher.MetadataMatcher{Filter: ns, Path: []*matcher.MetadataMatcher_PathSegment{{
				Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: key}}},
				Value: &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
					MatchPattern: &matcher.StringMatcher_Exact{Exact: "denied"}}}}},
			// Envoy's default matches an entry without the key: everything would be logged.
			MatchIfKeyNotFound: wrapperspb.Bool(false),
		}}}
	}
	return &accesslog.AccessLogFilter{FilterSpecifier: &accesslog.AccessLogFilter_OrFilter{OrFilter: &accesslog.OrFilter{
		Filters: []*accesslog.AccessLogFilter{first, shadowDenied(dryRunDenyResult), shadowDenied(dryRunAllowResult)}}}}
}

// alsService is wardend's access log service as the bootstrap reaches xDS (the same
// channel, internal/wardendgrpc): TLS that trusts only the mesh root and accepts only
// wardend's name, and the token file read on every new stream.
func (b *builder) alsService(s *AccessLogSink) *core.GrpcService {
	svc, err := wardendgrpc.Service(wardendgrpc.Channel{Target: s.Target, StatPrefix: "warden-als",
		ServerName: s.ServerName, RootPEM: s.RootPEM, TokenFile: s.TokenFile})
	if err != nil && b.err == nil {
		b.err = err
	}
	return svc
}
