package translate

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/wardenmesh/warden/watch"
)

// Proxy identifies one connected Envoy. Namespace and ServiceAccount come from the
// proven token, never from what the proxy claims.
type Proxy struct {
	ID             string // node id, "<pod>.<namespace>"
	Namespace      string
	Pod            string
	ServiceAccount string
	Labels         map[string]string // pod labels vouched for by the credential (a Pod object in the Input wins)
	IP             string            // pod IP when known
	Gateway        bool              // an ingress gateway: no capture, listeners from Gateway objects
	// AccessLog, when set, is where the proxy's access loggers send entries (accesslog.go).
	AccessLog *AccessLogSink
}

// Output is everything one proxy is served, per xDS type, plus what translation
// had to say about the input objects it used.
type Output struct {
	Listeners []types.Resource // *listener.Listener
	Routes    []types.Resource // *route.RouteConfiguration
	Clusters  []types.Resource // *cluster.Cluster
	Endpoints []types.Resource // *endpoint.ClusterLoadAssignment
	// SecretNames are the SDS secrets the resources above refer to ("default", "ROOTCA").
	// The xds package serves them from certs; translate never sees key material.
	SecretNames []string
	// GatewayCredentialNames are the SecretNames a gateway's Gateway servers name
	// (credentialName, gateway use): xds serves them only to a proxy whose Pod object is
	// a gateway, never as a sidecar's DestinationRule credential.
	GatewayCredentialNames []string
	Diagnostics            []watch.Diagnostic
	// Parts, when set, tells how Clusters, Listeners, Routes and Endpoints were put
	// together, so that a caller can hash what proxies share once per input.
	Parts *Parts
}

// Parts splits a sidecar's output into what every proxy with the same outbound view
// shares (the very same slices, built once per Index) and what is its own. For each
// type, the output list holds exactly the union of the two.
type Parts struct {
	// SharedKey names the shared slices within one Index: two outputs of the same Index
	// with the same SharedKey hold the very same shared slices, so a caller may hash
	// them once per key and Index. Keys of different Indexes are unrelated.
	SharedKey string

	SharedClusters, OwnClusters   []types.Resource
	SharedListeners, OwnListeners []types.Resource
	SharedRoutes, SharedEndpoints []types.Resource
}
