package xds

import (
	"fmt"
	"net"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wardenmesh/warden/internal/wardendgrpc"
)

// XDSStatPrefix names the xDS gRPC client in Envoy's stats.
const XDSStatPrefix = "xds-grpc"

// DefaultTokenPath is where a Kubernetes pod mounts the projected service-account
// token for wardend (audience "warden"); the kubelet rewrites it before it expires.
const DefaultTokenPath = "/var/run/secrets/tokens/warden-token"

// ServerName is the DNS name wardend's serving certificate carries and every
// bootstrap pins: "wardend.<namespace>.svc". The mesh CA signs DNS names only for
// wardend (workload certificates carry a SPIFFE URI and nothing else).
func ServerName(namespace string) string { return "wardend." + namespace + ".svc" }

// BootstrapOptions describe one proxy's Envoy bootstrap.
type BootstrapOptions struct {
	Identity   Identity
	Labels     map[string]string // informational node metadata; wardend never uses it for policy
	IPs        []string
	Gateway    bool
	Server     string // wardend's xDS address, host:port
	ServerName string // the DNS name wardend's certificate must carry (ServerName(ns))
	RootPEM    []byte // mesh root, the only CA trusted for wardend
	TokenFile  string // the credential file Envoy reads on every xDS connection
	Delta      bool   // use incremental xDS
	AdminAddr  string // default 127.0.0.1
	AdminPort  uint32 // default 15000
	// StatsPort, when set, serves the proxy's own stats for scraping on
	// 0.0.0.0:<StatsPort>/stats/prometheus (bootstrap_stats.go); 0: no stats listener.
	StatsPort uint32
}

// Bootstrap builds the Envoy bootstrap for a proxy. The xDS connection is TLS,
// trusts only the mesh root and accepts only wardend's name. The credential is not in
// the bootstrap: Envoy's gRPC client reads TokenFile whenever it opens a stream and
// sends it as a bearer token, so Envoy's admin (config_dump) shows only the path, and
// a token the kubelet (or `wardenctl token`) rewrites is used from the next
// connection on, without restarting Envoy.
func Bootstrap(o BootstrapOptions) (*bootstrap.Bootstrap, error) {
	if _, _, err := net.SplitHostPort(o.Server); err != nil {
		return nil, fmt.Errorf("server address %q: %w", o.Server, err)
	}
	if o.TokenFile == "" {
		return nil, fmt.Errorf("a token file is required: Envoy reads its credential from it")
	}
	if o.ServerName == "" {
		return nil, fmt.Errorf("wardend's server name is required")
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
	md.Fields[MetaXDSAddress] = structpb.NewStringValue(o.Server)
	md.Fields[MetaXDSServerName] = structpb.NewStringValue(o.ServerName)
	md.Fields[MetaTokenFile] = structpb.NewStringValue(o.TokenFile)
	// The certificate must name wardend, whatever address reaches it.
	xdsService, err := wardendgrpc.Service(wardendgrpc.Channel{Target: o.Server, StatPrefix: XDSStatPrefix,
		ServerName: o.ServerName, RootPEM: o.RootPEM, TokenFile: o.TokenFile,
		IntArgs: map[string]int64{"grpc.keepalive_time_ms": 30000, "grpc.keepalive_timeout_ms": 10000}})
	if err != nil {
		return nil, err
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
	var static *bootstrap.Bootstrap_StaticResources
	if o.StatsPort != 0 {
		if static, err = statsResources(o.StatsPort, o.AdminPort, o.AdminAddr); err != nil {
			return nil, err
		}
	}
	return &bootstrap.Bootstrap{
		StaticResources: static,
		Node:            &core.Node{Id: o.Identity.NodeID(), Cluster: nodeCluster, Metadata: md},
		// Many exact principals in one policy are merged into one regex, far faster to
		// match than a list of matchers (see translate/authz/rule.go); Envoy's default
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
				GrpcServices:              []*core.GrpcService{xdsService},
			},
			CdsConfig: ads,
			LdsConfig: ads,
		},
	}, nil
}
