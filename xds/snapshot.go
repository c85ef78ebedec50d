package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/wardenmesh/warden/translate"
)

// servedTypes are the types in every snapshot, in the order versions are reported.
var servedTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType, resource.SecretType}

// WorkloadSecret is the key material for one proxy.
type WorkloadSecret struct {
	CertChainPEM []byte
	KeyPEM       []byte
	RootPEM      []byte
	// Credentials are the gateway credentials (kubernetes://<name> and its -cacert)
	// this proxy may be served, resolved in its proven namespace; empty for sidecars.
	Credentials map[string]*tlsv3.Secret
}

// typeSet is one type's resources as served to one or more proxies. Its version is a
// hash of its content, so proxies whose sets are equal share one typeSet (interned by
// version): a thousand sidecars of one namespace hold one copy of their clusters.
type typeSet struct {
	version string
	items   map[string]types.ResourceWithTTL
	plain   map[string]types.Resource
	// refs are, for clusters and listeners, the EDS and RDS names they refer to; sds the
	// SDS secrets. Both are computed once per set.
	refs map[resource.Type]map[string]bool
	sds  []string

	vmOnce sync.Once
	vm     map[string]string
	vmErr  error
}

// versionMap is the per-resource version map delta xDS needs, computed once per set.
func (ts *typeSet) versionMap() (map[string]string, error) {
	ts.vmOnce.Do(func() {
		ts.vm = make(map[string]string, len(ts.items))
		for name, r := range ts.items {
			b, err := cache.MarshalResource(r.Resource)
			if err != nil {
				ts.vmErr = err
				return
			}
			ts.vm[name] = cache.HashResource(b)
		}
	})
	return ts.vm, ts.vmErr
}

// proxySnapshot is one proxy's snapshot: a typeSet per type. It implements
// go-control-plane's ResourceSnapshot; like every snapshot it is never modified.
type proxySnapshot struct {
	sets map[string]*typeSet
}

var _ cache.ResourceSnapshot = (*proxySnapshot)(nil)

func (s *proxySnapshot) GetVersion(typeURL string) string {
	if ts := s.sets[typeURL]; ts != nil {
		return ts.version
	}
	return ""
}

func (s *proxySnapshot) GetResourcesAndTTL(typeURL string) map[string]types.ResourceWithTTL {
	if ts := s.sets[typeURL]; ts != nil {
		return ts.items
	}
	return nil
}

func (s *proxySnapshot) GetResources(typeURL string) map[string]types.Resource {
	if ts := s.sets[typeURL]; ts != nil {
		return ts.plain
	}
	return nil
}

func (s *proxySnapshot) ConstructVersionMap() error {
	for _, ts := range s.sets {
		if _, err := ts.versionMap(); err != nil {
			return err
		}
	}
	return nil
}

func (s *proxySnapshot) GetVersionMap(typeURL string) map[string]string {
	if ts := s.sets[typeURL]; ts != nil {
		vm, _ := ts.versionMap()
		return vm
	}
	return nil
}

// buildSnapshot assembles one proxy's snapshot with a content-hash version per type,
// so that a rebuild of the same configuration pushes nothing and a rotated
// certificate pushes only SDS. It refuses to return a snapshot whose resources refer
// to secrets, routes or endpoints that are not in it.
//
// Only the secrets the resources refer to are served: in ADS mode go-control-plane does
// not answer a named request that leaves out a resource of the type, and Envoy names
// exactly the secrets its configuration uses.
func buildSnapshot(out *translate.Output, sec WorkloadSecret, rc *resourceCache) (built, error) {
	snap := &proxySnapshot{sets: map[string]*typeSet{}}
	if err := rc.configSets(snap, out); err != nil {
		return built{}, err
	}
	secrets, err := servedSecrets(out, snap, sec)
	if err != nil {
		return built{}, err
	}
	ts, err := rc.set(resource.SecretType, secrets)
	if err != nil {
		return built{}, fmt.Errorf("SDS: %w", err)
	}
	snap.sets[resource.SecretType] = ts
	if err := consistent(snap); err != nil {
		return built{}, err
	}
	b := built{snap: snap, versions: map[string]string{}, counts: map[string]int{}}
	for typ, ts := range snap.sets {
		b.versions[typ], b.counts[typ] = ts.version, len(ts.items)
	}
	return b, nil
}

// built is one proxy's snapshot with the version and resource count of each type.
type built struct {
	snap     *proxySnapshot
	versions map[string]string
	counts   map[string]int
}

// configSets puts the CDS, EDS, LDS and RDS sets of out into snap: what proxies share
// (out.Parts) hashed once per shared key, and only the endpoints and routes that the
// clusters and listeners refer to.
func (rc *resourceCache) configSets(snap *proxySnapshot, out *translate.Output) error {
	type parts struct{ shared, own []types.Resource }
	byType := map[string]parts{
		resource.ClusterType:  {nil, out.Clusters},
		resource.EndpointType: {nil, out.Endpoints},
		resource.ListenerType: {nil, out.Listeners},
		resource.RouteType:    {nil, out.Routes},
	}
	p := out.Parts
	if p != nil {
		byType = map[string]parts{
			resource.ClusterType:  {p.SharedClusters, p.OwnClusters},
			resource.EndpointType: {p.SharedEndpoints, nil},
			resource.ListenerType: {p.SharedListeners, p.OwnListeners},
			resource.RouteType:    {p.SharedRoutes, nil},
		}
	}
	for typ, pt := range byType {
		var ts *typeSet
		var err error
		if p != nil {
			ts, err = rc.setParts(typ, p.SharedKey, pt.shared, pt.own)
		} else {
			ts, err = rc.set(typ, pt.own)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", shortName(typ), err)
		}
		snap.sets[typ] = ts
	}
	// Serve only the endpoints and routes that the clusters and listeners refer to. In
	// ADS mode go-control-plane never answers a named request that leaves out a resource
	// of its type, and Envoy names exactly what its clusters and listeners use: one
	// unreferenced ClusterLoadAssignment would leave every EDS request unanswered.
	for _, dep := range []struct{ from, to string }{
		{resource.ClusterType, resource.EndpointType},
		{resource.ListenerType, resource.RouteType},
	} {
		ts, err := rc.referenced(snap.sets[dep.to], snap.sets[dep.from].refs[dep.to], dep.to)
		if err != nil {
			return fmt.Errorf("%s: %w", shortName(dep.to), err)
		}
		snap.sets[dep.to] = ts
	}
	return nil
}

// servedSecrets is the SDS secrets the configuration in snap (and out.SecretNames)
// refers to, made from the proxy's own key material. A reference to any other name is
// an error: Warden serves a proxy only its own identity's secrets.
func servedSecrets(out *translate.Output, snap *proxySnapshot, sec WorkloadSecret) ([]types.Resource, error) {
	used := map[string]bool{}
	for _, n := range out.SecretNames {
		used[n] = true
	}
	for _, typ := range []string{resource.ClusterType, resource.ListenerType} {
		for _, n := range snap.sets[typ].sds {
			used[n] = true
		}
	}
	var secrets []types.Resource
	if used[translate.SecretDefault] {
		secrets = append(secrets, &tlsv3.Secret{Name: translate.SecretDefault, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: sec.CertChainPEM}},
			PrivateKey:       &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: sec.KeyPEM}},
		}}})
		delete(used, translate.SecretDefault)
	}
	if used[translate.SecretRootCA] {
		secrets = append(secrets, &tlsv3.Secret{Name: translate.SecretRootCA, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: sec.RootPEM}},
		}}})
		delete(used, translate.SecretRootCA)
	}
	for _, n := range sortedKeys(used) {
		if c := sec.Credentials[n]; c != nil {
			secrets = append(secrets, c)
			delete(used, n)
		}
	}
	if len(used) > 0 {
		return nil, fmt.Errorf("resources refer to SDS secrets Warden does not serve: %v", sortedKeys(used))
	}
	return secrets, nil
}

// consistent checks that every EDS name a cluster refers to and every RDS name a
// listener refers to is in the snapshot (go-control-plane's Snapshot.Consistent, on
// references computed once per set).
func consistent(s *proxySnapshot) error {
	for _, c := range []struct{ from, to string }{
		{resource.ClusterType, resource.EndpointType},
		{resource.ListenerType, resource.RouteType},
	} {
		have := s.sets[c.to].items
		var missing []string
		for name := range s.sets[c.from].refs[c.to] {
			if _, ok := have[name]; !ok {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return fmt.Errorf("inconsistent snapshot: %s refer to %s not served: %s", shortName(c.from), shortName(c.to),
				strings.Join(missing, ", "))
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// resourceCache remembers, per resource object, its content hash and the SDS secrets
// it refers to, and interns typeSets by version. translate shares resource objects
// between the proxies of one input, so each is hashed and walked once per input, not
// once per proxy. A new cache is made for every input; entries are never stale because
// resources are immutable once built.
type resourceCache struct {
	hashes sync.Map // types.Resource -> [32]byte
	sds    sync.Map // types.Resource -> []string
	shared sync.Map // type URL + "|" + Parts.SharedKey -> version of that shared part

	mu   sync.Mutex
	sets map[string]*typeSet // by type URL + version
}

func newResourceCache() *resourceCache {
	return &resourceCache{sets: map[string]*typeSet{}}
}

func (rc *resourceCache) hash(r types.Resource) ([32]byte, error) {
	if h, ok := rc.hashes.Load(r); ok {
		return h.([32]byte), nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return [32]byte{}, err
	}
	h := sha256.Sum256(b)
	rc.hashes.Store(r, h)
	return h, nil
}

func (rc *resourceCache) refs(r types.Resource) []string {
	if n, ok := rc.sds.Load(r); ok {
		return n.([]string)
	}
	n := sdsRefs(r)
	rc.sds.Store(r, n)
	return n
}

// version hashes the resources' names and content hashes, in name order.
func (rc *resourceCache) version(items []types.Resource) (string, error) {
	type named struct {
		name string
		h    [32]byte
	}
	all := make([]named, 0, len(items))
	for _, r := range items {
		h, err := rc.hash(r)
		if err != nil {
			return "", err
		}
		all = append(all, named{cache.GetResourceName(r), h})
	}
	byName := func(a, b named) int { return strings.Compare(a.name, b.name) }
	if !slices.IsSortedFunc(all, byName) {
		slices.SortFunc(all, byName)
	}
	h := sha256.New()
	for _, n := range all {
		h.Write([]byte(n.name))
		h.Write([]byte{0})
		h.Write(n.h[:])
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// set returns the interned typeSet for items.
func (rc *resourceCache) set(typ string, items []types.Resource) (*typeSet, error) {
	v, err := rc.version(items)
	if err != nil {
		return nil, err
	}
	return rc.intern(typ, v, func() []types.Resource { return items })
}

// sharedVersion is version(items) of the shared part named key (translate's
// Parts.SharedKey), computed once per type and key in this cache's input.
func (rc *resourceCache) sharedVersion(typ, key string, items []types.Resource) (string, error) {
	if len(items) == 0 {
		return rc.version(nil)
	}
	k := typ + "|" + key
	if v, ok := rc.shared.Load(k); ok {
		return v.(string), nil
	}
	v, err := rc.version(items)
	if err != nil {
		return "", err
	}
	rc.shared.Store(k, v)
	return v, nil
}

// setParts returns the interned typeSet for the union of a shared slice and a proxy's
// own resources. The shared part is hashed once per input, not once per proxy; the
// set's version is derived from both parts' content versions.
func (rc *resourceCache) setParts(typ, key string, shared, own []types.Resource) (*typeSet, error) {
	vs, err := rc.sharedVersion(typ, key, shared)
	if err != nil {
		return nil, err
	}
	if len(own) == 0 {
		return rc.intern(typ, vs, func() []types.Resource { return shared })
	}
	vo, err := rc.version(own)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(vs + "+" + vo))
	return rc.intern(typ, hex.EncodeToString(h[:])[:16], func() []types.Resource {
		return append(append(make([]types.Resource, 0, len(shared)+len(own)), shared...), own...)
	})
}

// referenced returns the part of set named in refs (set itself when that is all of it).
func (rc *resourceCache) referenced(set *typeSet, refs map[string]bool, typ string) (*typeSet, error) {
	all := true
	for name := range set.plain {
		if !refs[name] {
			all = false
			break
		}
	}
	if all {
		return set, nil
	}
	keep := make([]types.Resource, 0, len(set.items))
	for name, r := range set.plain {
		if refs[name] {
			keep = append(keep, r)
		}
	}
	if len(keep) == len(set.items) {
		return set, nil
	}
	return rc.set(typ, keep)
}

// intern returns the typeSet of type typ and version v, building it from items() once.
func (rc *resourceCache) intern(typ, v string, items func() []types.Resource) (*typeSet, error) {
	key := typ + "/" + v
	rc.mu.Lock()
	ts := rc.sets[key]
	rc.mu.Unlock()
	if ts != nil {
		return ts, nil
	}
	list := items()
	ts = &typeSet{version: v, items: make(map[string]types.ResourceWithTTL, len(list)),
		plain: make(map[string]types.Resource, len(list))}
	for _, r := range list {
		name := cache.GetResourceName(r)
		if _, dup := ts.items[name]; dup {
			return nil, fmt.Errorf("two resources named %q", name)
		}
		ts.items[name] = types.ResourceWithTTL{Resource: r}
		ts.plain[name] = r
	}
	if typ == resource.ClusterType || typ == resource.ListenerType {
		ts.refs = cache.GetResourceReferences(ts.items)
		seen := map[string]bool{}
		for _, r := range list {
			for _, n := range rc.refs(r) {
				if !seen[n] {
					seen[n] = true
					ts.sds = append(ts.sds, n)
				}
			}
		}
		sort.Strings(ts.sds)
	}
	rc.mu.Lock()
	if cur := rc.sets[key]; cur != nil {
		ts = cur
	} else {
		rc.sets[key] = ts
	}
	rc.mu.Unlock()
	return ts, nil
}

// sdsRefs walks a resource, including packed Any configs, for SdsSecretConfig names.
func sdsRefs(m proto.Message) []string {
	var names []string
	var walk func(protoreflect.Message)
	walk = func(pm protoreflect.Message) {
		if sc, ok := pm.Interface().(*tlsv3.SdsSecretConfig); ok {
			names = append(names, sc.GetName())
			return
		}
		if a, ok := pm.Interface().(interface{ UnmarshalNew() (proto.Message, error) }); ok {
			if inner, err := a.UnmarshalNew(); err == nil {
				walk(inner.ProtoReflect())
			}
			return
		}
		pm.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					walk(l.Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message())
					return true
				})
			case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
				walk(v.Message())
			}
			return true
		})
	}
	walk(m.ProtoReflect())
	return names
}
