package translate

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wardenmesh/warden/translate/internal/shared"
)

const (
	// PassthroughCluster forwards outbound traffic to its original destination
	// (Istio's outboundTrafficPolicy ALLOW_ANY).
	PassthroughCluster = "PassthroughCluster"
	// BlackHoleCluster has no endpoints: traffic sent there fails.
	BlackHoleCluster = "BlackHoleCluster"
)

// outboundCluster is the name of the cluster of one Service port.
func outboundCluster(port uint32, fqdn string) string { return shared.OutboundCluster(port, fqdn) }

func (b *builder) originalDstCluster(name string) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST},
		LbPolicy:             cluster.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       duration(connectTimeout),
	}
}

// staticCluster has one endpoint, ip:port.
func (b *builder) staticCluster(name, ip string, port uint32) *cluster.Cluster {
	c := b.blackHoleCluster(name)
	c.LoadAssignment.Endpoints = []*endpoint.LocalityLbEndpoints{{
		LbEndpoints: []*endpoint.LbEndpoint{lbEndpoint(ip, port, nil)},
	}}
	return c
}

// blackHoleCluster is a STATIC cluster with no endpoints: requests fail with 503 and
// connections are closed.
func (b *builder) blackHoleCluster(name string) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       duration(connectTimeout),
		LoadAssignment:       &endpoint.ClusterLoadAssignment{ClusterName: name},
	}
}

// edsCluster is a Service port's cluster; its endpoints come over EDS under its name.
func (b *builder) edsCluster(name string) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: name},
		ConnectTimeout:       duration(connectTimeout),
		LbPolicy:             cluster.Cluster_ROUND_ROBIN,
	}
}

// Transport socket matching for auto mTLS: endpoints whose metadata says tlsMode istio
// get mesh mTLS, all others plaintext.
const (
	transportSocketMatchKey = "envoy.transport_socket_match"
	tlsModeKey              = "tlsMode"
	tlsModeIstio            = "istio"
)

func (b *builder) autoMTLSMatches(meshTLS *core.TransportSocket) []*cluster.Cluster_TransportSocketMatch {
	return []*cluster.Cluster_TransportSocketMatch{
		{
			Name:            "tlsMode-istio",
			Match:           &structpb.Struct{Fields: map[string]*structpb.Value{tlsModeKey: structpb.NewStringValue(tlsModeIstio)}},
			TransportSocket: meshTLS,
		},
		{
			Name:            "tlsMode-disabled",
			Match:           &structpb.Struct{},
			TransportSocket: b.rawSocket(),
		},
	}
}

// upstreamHTTPOptions are the HTTP protocol options of a cluster for a port of proto:
// HTTP/2 to an http2, grpc or grpc-web port, as Istio does; on an undeclared port,
// the protocol the downstream used (HTTP/1.1 or h2c), as Istio's sniffed clusters do.
// tcp_proxy ignores them.
func (b *builder) upstreamHTTPOptions(proto protocol) map[string]*anypb.Any {
	var opts *upstreamhttp.HttpProtocolOptions
	switch proto {
	case protoHTTP2:
		opts = &upstreamhttp.HttpProtocolOptions{
			UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
				ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
						Http2ProtocolOptions: &core.Http2ProtocolOptions{},
					},
				},
			},
		}
	case protoAuto:
		opts = &upstreamhttp.HttpProtocolOptions{
			UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_UseDownstreamProtocolConfig{
				UseDownstreamProtocolConfig: &upstreamhttp.HttpProtocolOptions_UseDownstreamHttpConfig{
					HttpProtocolOptions:  &core.Http1ProtocolOptions{},
					Http2ProtocolOptions: &core.Http2ProtocolOptions{},
				},
			},
		}
	default:
		return nil
	}
	return map[string]*anypb.Any{httpProtocolOptionsKey: b.any(opts)}
}

const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
