package translate

import (
	"encoding/json"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	sigyaml "sigs.k8s.io/yaml"

	"github.com/wardenmesh/warden/watch"
)

// AnnotationProxyConfig is the pod annotation that overrides MeshConfig defaultConfig
// for one proxy (Istio's proxy.istio.io/config, a ProxyConfig in YAML or JSON).
const AnnotationProxyConfig = "proxy.istio.io/config"

// gatewayProxyConfig is the gateway's ProxyConfig as Istio's agent computes it:
// MeshConfig defaultConfig with the pod's proxy.istio.io/config annotation merged over
// it (fields the annotation sets win, an explicit 0 included). The annotation is read from the Pod object (or
// the Deployment's template), never from what the proxy claims. An annotation that is
// not a ProxyConfig is reported on the workload and ignored: the mesh default stands.
func (b *builder) gatewayProxyConfig(w *watch.Workload) *meshv1alpha1.ProxyConfig {
	pc := &meshv1alpha1.ProxyConfig{}
	if d := b.in.Mesh.GetDefaultConfig(); d != nil {
		pc = proto.Clone(d).(*meshv1alpha1.ProxyConfig)
	}
	v, ok := w.PodAnnotations[AnnotationProxyConfig]
	if !ok {
		return pc
	}
	field := "metadata.annotations[" + AnnotationProxyConfig + "]"
	if w.Kind == "Deployment" {
		field = "spec.template." + field
	}
	over := &meshv1alpha1.ProxyConfig{}
	data, err := sigyaml.YAMLToJSONStrict([]byte(v))
	if err != nil {
		b.diag(severityError, &w.Meta, field, "not YAML or JSON: "+err.Error()+"; MeshConfig defaultConfig applies instead")
		return pc
	}
	if err := protojson.Unmarshal(data, over); err != nil {
		b.diag(severityError, &w.Meta, field, "not a ProxyConfig: "+watch.CleanProtoError(err)+"; MeshConfig defaultConfig applies instead")
		return pc
	}
	proto.Merge(pc, over)
	// proto.Merge skips zero scalars; Istio's agent applies the annotation as JSON over
	// the default, so an explicit numTrustedProxies: 0 turns the mesh's trust off.
	var tree struct {
		GatewayTopology map[string]json.RawMessage `json:"gatewayTopology"`
	}
	if json.Unmarshal(data, &tree) == nil {
		if _, set := tree.GatewayTopology["numTrustedProxies"]; set && pc.GatewayTopology != nil {
			pc.GatewayTopology.NumTrustedProxies = over.GetGatewayTopology().GetNumTrustedProxies()
		}
	}
	return pc
}

// gatewayTrustedHops is the HCM xff_num_trusted_hops of the gateway's listeners:
// gatewayTopology.numTrustedProxies, as Istio's buildGatewayConnectionManager sets it
// (pilot/pkg/networking/core/gateway.go). With use_remote_address on, Envoy then takes
// the client address from the numTrustedProxies-th X-Forwarded-For entry from the
// right, which is what remoteIpBlocks and remote.ip match (RBAC remote_ip), while
// ipBlocks and source.ip stay the connection's peer (direct_remote_ip).
func (b *builder) gatewayTrustedHops(w *watch.Workload) uint32 {
	return b.gatewayProxyConfig(w).GetGatewayTopology().GetNumTrustedProxies()
}
