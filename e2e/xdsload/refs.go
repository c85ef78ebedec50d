package xdsload

import (
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	// The extension types listeners and clusters carry in Any fields, so the walk can
	// look inside them (an unknown type is skipped).
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// referenced lists, by type URL, the names resources of typeURL make a proxy subscribe
// to: EDS clusters' service names (from CDS); route configurations and secrets (from
// LDS); secrets (from CDS).
func referenced(typeURL string, res []*anypb.Any) map[string]map[string]bool {
	if typeURL != resource.ClusterType && typeURL != resource.ListenerType {
		return nil
	}
	out := map[string]map[string]bool{}
	add := func(t, n string) {
		if out[t] == nil {
			out[t] = map[string]bool{}
		}
		out[t][n] = true
	}
	if typeURL == resource.ClusterType {
		add(resource.EndpointType, "") // the key exists even without EDS clusters
		delete(out[resource.EndpointType], "")
	} else {
		add(resource.RouteType, "")
		delete(out[resource.RouteType], "")
	}
	for _, a := range res {
		m, err := a.UnmarshalNew()
		if err != nil {
			continue
		}
		walk(m.ProtoReflect(), func(msg protoreflect.Message) {
			switch msg.Descriptor().FullName() {
			case "envoy.config.cluster.v3.Cluster":
				if enumField(msg, "type") == 3 { // EDS
					name := strField(msg, "name")
					if ecc := msgField(msg, "eds_cluster_config"); ecc != nil {
						if s := strField(ecc, "service_name"); s != "" {
							name = s
						}
					}
					add(resource.EndpointType, name)
				}
			case "envoy.extensions.filters.network.http_connection_manager.v3.Rds":
				add(resource.RouteType, strField(msg, "route_config_name"))
			case "envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig":
				// Only secrets served over this stream: istiod's name the istio-agent's socket.
				if n := strField(msg, "name"); n != "" && overADS(msgField(msg, "sds_config")) {
					add(resource.SecretType, n)
				}
			}
		})
	}
	return out
}

// secretCerts returns the PEM certificate chains inline in SDS Secrets.
func secretCerts(res []*anypb.Any) [][]byte {
	var out [][]byte
	for _, a := range res {
		m, err := a.UnmarshalNew()
		if err != nil {
			continue
		}
		walk(m.ProtoReflect(), func(msg protoreflect.Message) {
			if msg.Descriptor().FullName() != "envoy.extensions.transport_sockets.tls.v3.TlsCertificate" {
				return
			}
			if ds := msgField(msg, "certificate_chain"); ds != nil {
				if fd := ds.Descriptor().Fields().ByName("inline_bytes"); fd != nil && ds.Has(fd) {
					out = append(out, ds.Get(fd).Bytes())
				}
			}
		})
	}
	return out
}

// walk calls fn for m and every message inside it, unpacking Any fields whose type is
// registered.
func walk(m protoreflect.Message, fn func(protoreflect.Message)) {
	if m.Descriptor().FullName() == "google.protobuf.Any" {
		a, ok := m.Interface().(*anypb.Any)
		if !ok {
			return
		}
		inner, err := a.UnmarshalNew()
		if err == nil {
			walk(inner.ProtoReflect(), fn)
		}
		return
	}
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), fn)
			}
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				walk(mv.Message(), fn)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Kind() == protoreflect.MessageKind:
			walk(v.Message(), fn)
		}
		return true
	})
}

func strField(m protoreflect.Message, name protoreflect.Name) string {
	if fd := m.Descriptor().Fields().ByName(name); fd != nil && fd.Kind() == protoreflect.StringKind {
		return m.Get(fd).String()
	}
	return ""
}

func enumField(m protoreflect.Message, name protoreflect.Name) protoreflect.EnumNumber {
	if fd := m.Descriptor().Fields().ByName(name); fd != nil && fd.Kind() == protoreflect.EnumKind {
		return m.Get(fd).Enum()
	}
	return -1
}

func msgField(m protoreflect.Message, name protoreflect.Name) protoreflect.Message {
	if fd := m.Descriptor().Fields().ByName(name); fd != nil && fd.Kind() == protoreflect.MessageKind && m.Has(fd) {
		return m.Get(fd).Message()
	}
	return nil
}

// overADS reports whether a ConfigSource is the ADS stream itself.
func overADS(src protoreflect.Message) bool {
	return src != nil && msgField(src, "ads") != nil
}
