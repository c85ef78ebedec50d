package watch

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	sigyaml "sigs.k8s.io/yaml"
)

// The mesh configuration lives, as in Istio, in the ConfigMap "istio" of the control
// plane namespace, as MeshConfig YAML under the data key "mesh".
const (
	MeshConfigNamespace = "istio-system"
	MeshConfigName      = "istio"
	meshDataKey         = "mesh"
)

// Mesh defaults, as in Istio.
const (
	DefaultRootNamespace = "istio-system"
	DefaultTrustDomain   = "cluster.local"
	DefaultDomainSuffix  = "cluster.local"
)

// MultipleCustomAuthzProvidersKey is a data key of the mesh ConfigMap beside "mesh",
// named after istiod's environment variable PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS
// (MeshConfig has no field for it). "true" lets one workload use several CUSTOM
// providers, each with its own ext_authz filter; unset or "false", Istio's default,
// turns the CUSTOM rules of such a workload into RBAC DENY rules.
const MultipleCustomAuthzProvidersKey = "PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS"

// decodeMeshFlag reads a boolean data key of the mesh ConfigMap (strconv.ParseBool);
// absent is false.
func decodeMeshFlag(data map[string]string, key string) (bool, *fieldError) {
	v, ok := data[key]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &fieldError{"data." + key, "want true or false, got " + strconv.Quote(v)}
	}
	return b, nil
}

func isMeshConfigMap(m *Meta) bool {
	return m.Kind == "ConfigMap" && m.Namespace == MeshConfigNamespace && m.Name == MeshConfigName
}

// decodeMesh strictly decodes MeshConfig YAML and applies defaults.
func decodeMesh(text string) (*meshv1alpha1.MeshConfig, *fieldError) {
	const field = "data.mesh"
	data, err := sigyaml.YAMLToJSONStrict([]byte(text))
	if err != nil {
		return nil, &fieldError{field, "invalid YAML: " + cleanYAMLError(err)}
	}
	mc := &meshv1alpha1.MeshConfig{}
	if !isNull(data) {
		if fe := decodeProtoStrict(field, data, mc); fe != nil {
			return nil, fe
		}
		// REGISTRY_ONLY is the enum's zero value: "outboundTrafficPolicy: {}" would read
		// as REGISTRY_ONLY, where Istio (which merges onto its defaults) keeps ALLOW_ANY.
		var tree struct {
			OutboundTrafficPolicy map[string]any `json:"outboundTrafficPolicy"`
		}
		if json.Unmarshal(data, &tree) == nil && mc.OutboundTrafficPolicy != nil {
			if _, set := tree.OutboundTrafficPolicy["mode"]; !set {
				mc.OutboundTrafficPolicy = nil
			}
		}
	}
	return withMeshDefaults(mc), nil
}

// DefaultMeshConfig is the MeshConfig used when none is given.
func DefaultMeshConfig() *meshv1alpha1.MeshConfig {
	return withMeshDefaults(&meshv1alpha1.MeshConfig{})
}

// withMeshDefaults fills rootNamespace, trustDomain, enableAutoMtls and
// outboundTrafficPolicy (ALLOW_ANY, as Istio's defaults) when unset.
func withMeshDefaults(mc *meshv1alpha1.MeshConfig) *meshv1alpha1.MeshConfig {
	if mc.GetOutboundTrafficPolicy() == nil {
		mc.OutboundTrafficPolicy = &meshv1alpha1.MeshConfig_OutboundTrafficPolicy{Mode: meshv1alpha1.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY}
	}
	if mc.GetRootNamespace() == "" {
		mc.RootNamespace = DefaultRootNamespace
	}
	if mc.GetTrustDomain() == "" {
		mc.TrustDomain = DefaultTrustDomain
	}
	if mc.GetEnableAutoMtls() == nil {
		mc.EnableAutoMtls = wrapperspb.Bool(true)
	}
	return mc
}

// WithTrustDomain returns a copy of in that keeps serving trust domain td when the
// MeshConfig asks for another one, with a warning on the mesh ConfigMap saying so; in
// itself is not modified. wardend mints certificates for one trust domain, fixed at
// start, so a change applies only after a restart: translating with the new domain
// while certificates carry the old one would break every SAN check. in is returned
// as it is when it already uses td.
func (in *Input) WithTrustDomain(td string) *Input {
	if in.TrustDomain == td {
		return in
	}
	c := *in
	c.Mesh = proto.CloneOf(in.Mesh)
	c.Mesh.TrustDomain = td
	c.TrustDomain = td
	m := Meta{Kind: "ConfigMap", APIVersion: "v1", Namespace: MeshConfigNamespace, Name: MeshConfigName}
	for _, o := range in.objects {
		if isMeshConfigMap(&o.Meta) {
			m = o.Meta
		}
	}
	msg := fmt.Sprintf("trustDomain %q is not applied until wardend restarts; translation and certificates keep %q", in.TrustDomain, td)
	c.Diagnostics = append(slices.Clone(in.Diagnostics), DiagnosticFor(&m, SeverityWarning, "data."+meshDataKey+".trustDomain", msg))
	slices.SortStableFunc(c.Diagnostics, compareDiagnostics)
	return &c
}
