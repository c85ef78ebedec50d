package xds

import (
	"fmt"
	"net"
	"strconv"
	"time"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreams "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// XDSClusterName is the bootstrap cluster pointing at wardend.
const XDSClusterName = "xds-grpc"

// BootstrapOptions describe one proxy's Envoy bootstrap.
type BootstrapOptions struct {
	Identity  Identity
	Labels    map[string]string
	IPs       []string
	Gateway   bool
	Server    string // wardend's xDS address, host:port
	ServerID  string // wardend's SPIFFE ID, pinned in the TLS handshake
	RootPEM   []byte // mesh root, the only CA trusted for wardend
	Token     string // proves Identity to wardend
	Delta     bool   // use incremental xDS
	AdminAddr string // default 127.0.0.1
	AdminPort uint32 // default 15000
}

// Bootstrap builds the Envoy bootstrap for a proxy. The xDS connection is TLS,
// trusts only the mesh root and accepts only wardend's SPIFFE ID; the token rides in
// the stream metadata.
func Bootstrap(o BootstrapOptions) (*bootstrap.Bootstrap, error) {
	host, portStr, err := net.SplitHostPort(o.Server)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", o.Server, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("server port %q: %w", portStr, err)
	}
	if o.AdminAddr == "" {
		o.AdminAddr = "127.0.0.1"
	}
	if o.AdminPort == 0 {
		o.AdminPort = 15000
	}
	md, err := NodeMetadata(o.Identity, o.Labels, o.IPs, o.Gateway)
	if err != nil {
		return nil, err
	}
	tlsCtx := &tlsv3.UpstreamTlsContext{
		Sni: "wardend",
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams: &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: o.RootPEM}},
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
					SanType: tlsv3.SubjectAltNameMatcher_URI,
					Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: o.ServerID}},
				}},
			}},
			AlpnProtocols: []string{"h2"},
		},
	}
	tlsAny, err := marshalAny(tlsCtx)
	if err != nil {
		return nil, err
	}
	h2, err := marshalAny(&upstreams.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreams.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreams.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreams.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &core.Http2ProtocolOptions{}},
		}},
	})
	if err != nil {
		return nil, err
	}
	discoveryType := cluster.Cluster_STATIC
	if net.ParseIP(host) == nil {
		discoveryType = cluster.Cluster_STRICT_DNS
	}
	apiType := core.ApiConfigSource_GRPC
	if o.Delta {
		apiType = core.ApiConfigSource_DELTA_GRPC
	}
	ads := &core.ConfigSource{ResourceApiVersion: core.ApiVersion_V3, ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}
	nodeCluster := o.Identity.Namespace
	if app := o.Labels["app"]; app != "" {
		nodeCluster = app + "." + o.Identity.Namespace
	}
	return &bootstrap.Bootstrap{
		Node: &core.Node{Id: o.Identity.NodeID(), Cluster: nodeCluster, Metadata: md},
		// Many exact principals in one policy are merged into one regex, far faster to
		// match than a list of matchers (see translate/authz_rule.go); Envoy's default
		// regex program size limit (100) would reject it. These are Istio's bootstrap values.
		LayeredRuntime: &bootstrap.LayeredRuntime{Layers: []*bootstrap.RuntimeLayer{{
			Name: "warden",
			LayerSpecifier: &bootstrap.RuntimeLayer_StaticLayer{StaticLayer: &structpb.Struct{Fields: map[string]*structpb.Value{
				"re2.max_program_size.error_level": structpb.NewNumberValue(32768),
				"re2.max_program_size.warn_level":  structpb.NewNumberValue(32768),
			}}},
		}}},
		Admin: &bootstrap.Admin{Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: o.AdminAddr, PortSpecifier: &core.SocketAddress_PortValue{PortValue: o.AdminPort}}}}},
		DynamicResources: &bootstrap.Bootstrap_DynamicResources{
			AdsConfig: &core.ApiConfigSource{
				ApiType:                   apiType,
				TransportApiVersion:       core.ApiVersion_V3,
				SetNodeOnFirstMessageOnly: true,
				GrpcServices: []*core.GrpcService{{
					TargetSpecifier: &core.GrpcService_EnvoyGrpc_{EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: XDSClusterName}},
					InitialMetadata: []*core.HeaderValue{{Key: "authorization", Value: "Bearer " + o.Token}},
				}},
			},
			CdsConfig: ads,
			LdsConfig: ads,
		},
		StaticResources: &bootstrap.Bootstrap_StaticResources{Clusters: []*cluster.Cluster{{
			Name:                 XDSClusterName,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: discoveryType},
			ConnectTimeout:       durationpb.New(5 * time.Second),
			TypedExtensionProtocolOptions: map[string]*anypb.Any{
				"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": h2,
			},
			LoadAssignment: &endpoint.ClusterLoadAssignment{ClusterName: XDSClusterName, Endpoints: []*endpoint.LocalityLbEndpoints{{
				LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
					Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
						Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)}}}},
				}}}},
			}}},
			TransportSocket: &core.TransportSocket{Name: "envoy.transport_sockets.tls",
				ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: tlsAny}},
		}}},
	}, nil
}

func marshalAny(m proto.Message) (*anypb.Any, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, err
	}
	return a, nil
}
