// Package shared holds the few helpers translate and translate/authz both need, so
// that authz does not import translate: the names Envoy
// resources and filters share across the two (outbound clusters, jwt_authn
// metadata), the Service port protocols Envoy proxies, and a build-once cache.
package shared

import (
	"strconv"
	"strings"
	"sync"
)

// JWTFilterName is Envoy's JWT authentication HTTP filter. RBAC reads the verified
// payload from its dynamic metadata.
const JWTFilterName = "envoy.filters.http.jwt_authn"

// JWTPayloadKey is the dynamic metadata key (under JWTFilterName) holding the
// verified token's payload, as Istio names it: RBAC matches request principals and
// request.auth.* conditions on [payload, <claim>...].
const JWTPayloadKey = "payload"

// OutboundCluster is the name of the cluster of one Service port, as Istio names it.
func OutboundCluster(port uint32, fqdn string) string {
	return "outbound|" + strconv.FormatUint(uint64(port), 10) + "||" + fqdn
}

// IsStream reports whether a Kubernetes port protocol is one Envoy can proxy (TCP).
func IsStream(protocol string) bool {
	return protocol == "" || strings.EqualFold(protocol, "TCP")
}

// Lazy is a cache entry built once, on first use.
type Lazy[V any] struct {
	once sync.Once
	v    V
}

// Cached returns m[k], building it with build on first use. Different keys build
// concurrently; mu guards m.
func Cached[K comparable, V any](mu *sync.Mutex, m map[K]*Lazy[V], k K, build func() V) V {
	mu.Lock()
	e := m[k]
	if e == nil {
		e = &Lazy[V]{}
		m[k] = e
	}
	mu.Unlock()
	e.once.Do(func() { e.v = build() })
	return e.v
}
