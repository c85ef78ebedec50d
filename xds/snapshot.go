package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/wardenmesh/warden/translate"
)

// Secret names every proxy is served over SDS.
const (
	SecretDefault = "default"
	SecretRoot    = "ROOTCA"
)

// servedTypes are the types in every snapshot, in the order versions are reported.
var servedTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType, resource.SecretType}

// WorkloadSecret is the key material for one proxy.
type WorkloadSecret struct {
	CertChainPEM []byte
	KeyPEM       []byte
	RootPEM      []byte
}

// buildSnapshot assembles one proxy's snapshot with a content-hash version per type,
// so that a rebuild of the same configuration pushes nothing and a rotated
// certificate pushes only SDS. It refuses to return a snapshot whose resources refer
// to secrets, routes or endpoints that are not in it.
//
// Only the secrets the resources refer to are served: in ADS mode go-control-plane does
// not answer a named request that leaves out a resource of the type, and Envoy names
// exactly the secrets its configuration uses.
func buildSnapshot(out *translate.Output, sec WorkloadSecret) (*cache.Snapshot, map[string]string, map[string]int, error) {
	all := []types.Resource{
		&tlsv3.Secret{Name: SecretDefault, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: sec.CertChainPEM}},
			PrivateKey:       &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: sec.KeyPEM}},
		}}},
		&tlsv3.Secret{Name: SecretRoot, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: sec.RootPEM}},
		}}},
	}
	used := map[string]bool{}
	for _, n := range out.SecretNames {
		used[n] = true
	}
	for _, r := range append(append([]types.Resource{}, out.Listeners...), out.Clusters...) {
		for _, n := range sdsRefs(r) {
			used[n] = true
		}
	}
	var secrets []types.Resource
	for _, s := range all {
		if used[cache.GetResourceName(s)] {
			secrets = append(secrets, s)
		}
	}
	byType := map[string][]types.Resource{
		resource.ClusterType:  out.Clusters,
		resource.EndpointType: out.Endpoints,
		resource.ListenerType: out.Listeners,
		resource.RouteType:    out.Routes,
		resource.SecretType:   secrets,
	}
	snap := &cache.Snapshot{}
	versions := map[string]string{}
	counts := map[string]int{}
	for _, typ := range servedTypes {
		items := byType[typ]
		v, err := contentVersion(items)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("hash %s: %w", shortName(typ), err)
		}
		snap.Resources[cache.GetResponseType(typ)] = cache.NewResources(v, items)
		versions[typ] = v
		counts[typ] = len(items)
	}
	if err := snap.Consistent(); err != nil {
		return nil, nil, nil, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	if err := checkSecretRefs(out, secrets); err != nil {
		return nil, nil, nil, err
	}
	return snap, versions, counts, nil
}

// contentVersion hashes the deterministic encoding of resources, sorted by name.
func contentVersion(items []types.Resource) (string, error) {
	type named struct {
		name string
		b    []byte
	}
	all := make([]named, 0, len(items))
	for _, r := range items {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			return "", err
		}
		all = append(all, named{cache.GetResourceName(r), b})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	h := sha256.New()
	for _, n := range all {
		fmt.Fprintf(h, "%s\x00%d\x00", n.name, len(n.b))
		h.Write(n.b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// checkSecretRefs verifies every SDS secret name used by listeners and clusters
// exists in the snapshot (go-control-plane's Consistent does not check SDS).
func checkSecretRefs(out *translate.Output, secrets []types.Resource) error {
	have := map[string]bool{}
	for _, s := range secrets {
		have[cache.GetResourceName(s)] = true
	}
	var missing []string
	check := func(name string) {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	for _, n := range out.SecretNames {
		check(n)
	}
	for _, r := range append(append([]types.Resource{}, out.Listeners...), out.Clusters...) {
		for _, n := range sdsRefs(r) {
			check(n)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("resources refer to SDS secrets not served: %v", missing)
	}
	return nil
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
