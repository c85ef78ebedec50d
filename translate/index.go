package translate

import (
	"sync"

	"github.com/wardenmesh/warden/translate/authz"
	"github.com/wardenmesh/warden/translate/internal/shared"
	"github.com/wardenmesh/warden/watch"
)

// Index holds what translation derives from one Input, computed once and shared by
// every proxy: the PeerAuthentication choice per scope, each workload's resolved
// mode, the DestinationRule lookup, the outbound view of the Services, and the
// outbound resources per proxy namespace. It is safe for concurrent use.
//
// Resources returned by Translate may be shared between proxies and must not be
// modified.
type Index struct {
	in    *watch.Input
	pa    *paIndex
	authz *authz.Index
	// authzByNS lists the AuthorizationPolicies of each namespace, in Input order.
	authzByNS map[string][]*authzConfig
	mtls      map[*watch.Workload]MTLS
	dr        *drIndex
	byPort    map[uint32][]outboundService
	ports     []uint32
	services  []outboundService  // sorted by cluster name
	seDiags   []watch.Diagnostic // about ServiceEntry ports left out (serviceentry.go)

	sharedOnce sync.Once
	shared     *outboundSet

	mu       sync.Mutex // guards the maps below; entries build outside it
	outbound map[string]*lazy[*outboundSet]
	clusters map[clusterKey]*lazy[*clusterEntry]
	vhosts   map[vhostKey]*lazy[*vhostEntry]
}

type lazy[V any] = shared.Lazy[V]

// cached is shared.Cached: m[k], built with build on first use.
func cached[K comparable, V any](mu *sync.Mutex, m map[K]*lazy[V], k K, build func() V) V {
	return shared.Cached(mu, m, k, build)
}

// NewIndex prepares in for translating many proxies.
func NewIndex(in *watch.Input) *Index {
	x := &Index{
		in:        in,
		pa:        newPAIndex(in),
		authz:     authz.NewIndex(in),
		authzByNS: map[string][]*authzConfig{},
		mtls:      make(map[*watch.Workload]MTLS, len(in.Workloads)),
		dr:        newDRIndex(in),
		outbound:  map[string]*lazy[*outboundSet]{},
		clusters:  map[clusterKey]*lazy[*clusterEntry]{},
		vhosts:    map[vhostKey]*lazy[*vhostEntry]{},
	}
	for _, c := range in.AuthorizationPolicies {
		x.authzByNS[c.Namespace] = append(x.authzByNS[c.Namespace], c)
	}
	for _, w := range in.Workloads {
		x.mtls[w] = x.pa.resolve(w.Namespace, w.PodLabels)
	}
	x.byPort, x.ports, x.services = outboundPorts(in)
	x.addServiceEntries()
	return x
}

// Input is the snapshot the Index was built from.
func (x *Index) Input() *watch.Input { return x.in }

// ResolveMTLS is the package-level ResolveMTLS using the precomputed scopes.
func (x *Index) ResolveMTLS(namespace string, podLabels map[string]string) MTLS {
	return x.pa.resolve(namespace, podLabels)
}

// workloadMTLS is the resolved mode of a workload of the Input.
func (x *Index) workloadMTLS(w *watch.Workload) MTLS {
	if m, ok := x.mtls[w]; ok {
		return m
	}
	return x.pa.resolve(w.Namespace, w.PodLabels)
}

// outboundFor returns the shared outbound resources for a proxy, building them on
// first use.
func (x *Index) outboundFor(namespace string, labels map[string]string) *outboundSet {
	key := namespace + "|" + x.dr.selectorKey(namespace, labels)
	return cached(&x.mu, x.outbound, key, func() *outboundSet {
		ob := x.buildOutbound(namespace, labels)
		ob.key = key
		return ob
	})
}
