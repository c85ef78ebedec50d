// Package shared holds the few helpers translate and translate/authz both need, so
// that authz does not import translate: deterministic Any packing, the names Envoy
// resources and filters share across the two (outbound clusters, jwt_authn
// metadata), the Service port protocols Envoy proxies, and a build-once cache.
package shared

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// JWTFilterName is Envoy's JWT authentication HTTP filter. RBAC reads the verified
// payload from its dynamic metadata.
const JWTFilterName = "envoy.filters.http.jwt_authn"

// JWTPayloadKey is the dynamic metadata key (under JWTFilterName) holding the
// verified token's payload, as Istio names it: RBAC matches request principals and
// request.auth.* conditions on [payload, <claim>...].
const JWTPayloadKey = "payload"

// MarshalAny packs msg into an Any with deterministic map ordering, so that the same
// config always gives the same bytes (anypb.New does not guarantee that).
func MarshalAny(msg proto.Message) (*anypb.Any, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, msg, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, fmt.Errorf("marshal %s: %w", msg.ProtoReflect().Descriptor().FullName(), err)
	}
	return a, nil
}

// MustAny is MarshalAny for builders: the first error is kept in *errp and later calls
// still return a non-nil (empty) Any so construction can finish and be reported once.
func MustAny(errp *error, msg proto.Message) *anypb.Any {
	a, err := MarshalAny(msg)
	if err != nil {
		if *errp == nil {
			*errp = err
		}
		return &anypb.Any{}
	}
	return a
}

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
