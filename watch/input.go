package watch

import (
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
)

// Location says where an object or a problem is: a file and the document within it
// (directory mode), or the API server (Kubernetes mode). Meta.Source and
// Diagnostic.Source hold one.
type Location struct {
	File string // path of the YAML file, or "" for objects from the API server
	Doc  int    // 0-based index of the YAML document within File; -1 for the whole file
}

func (s Location) String() string {
	switch {
	case s.File == "":
		return "api-server"
	case s.Doc < 0:
		return s.File
	}
	return s.File + "#" + itoa(s.Doc)
}

// Meta is the part of an object's metadata that Warden uses.
type Meta struct {
	Kind              string // e.g. "PeerAuthentication"
	APIVersion        string // as written, e.g. "security.istio.io/v1"
	Namespace         string
	Name              string
	Labels            map[string]string
	Annotations       map[string]string
	CreationTimestamp time.Time // zero when absent; see Input ordering rules
	ResourceVersion   string
	UID               string
	Source            Location // where it was read
}

// Key is "namespace/name".
func (m *Meta) Key() string { return m.Namespace + "/" + m.Name }

// Ref is "Kind namespace/name" ("Kind name" for cluster-scoped kinds), how objects
// are named in diagnostics.
func (m *Meta) Ref() string { return ref(m.Kind, m.Namespace, m.Name) }

// Config is one Istio object: its metadata and its strictly decoded spec.
// All API versions decode into the same spec type (v1 and v1beta1 security types,
// v1/v1beta1/v1alpha3 networking types are aliases of one another in istio.io/api).
type Config[T any] struct {
	Meta
	Spec T
}

// Port is a container port of a workload.
type Port struct {
	Name     string
	Port     uint32
	Protocol string // TCP, UDP, SCTP
}

// Workload is one pod: a Pod object, or the single replica of a Deployment.
type Workload struct {
	Meta                  // of the Pod or Deployment it came from (Kind tells which)
	PodName        string // name of the pod; for a Deployment, the Deployment name
	ServiceAccount string // "default" when unset
	PodLabels      map[string]string
	PodAnnotations map[string]string
	IP             string // status.podIP, else the warden.io/pod-ip annotation, else ""
	Ports          []Port // container ports, all containers
	Sidecar        bool   // injection decision: namespace label / pod annotation or label / tlsMode label
	Gateway        bool   // labels include istio: ingressgateway (or istio: egressgateway)
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name           string
	Port           uint32
	TargetPort     uint32 // resolved number; 0 when TargetPortName must be looked up on the pod
	TargetPortName string // named targetPort, resolved against the workload's container ports
	Protocol       string // TCP, UDP, SCTP; TCP when unset
	AppProtocol    string
}

// Service is a Kubernetes Service.
type Service struct {
	Meta
	ClusterIP string            // "" when unknown (directory mode without an allocator), "None" when headless
	Selector  map[string]string // nil selects nothing
	Ports     []ServicePort
}

// Endpoint is one ready backend of one Service port.
type Endpoint struct {
	Workload *Workload
	IP       string
	Port     uint32 // target (container) port
}

// Namespace is a Kubernetes Namespace.
type Namespace struct {
	Meta
}

// Diagnostic is a problem with one input object (or a file). Severity "error" means
// the object was rejected (and, for security objects, its scope fails closed);
// "warning" means it was accepted but something in it is surprising or ignored.
type Diagnostic struct {
	Severity  string // "error" or "warning"
	Source    Location
	Kind      string // "" for problems with a whole file or an unidentifiable document
	Namespace string
	Name      string
	Field     string // e.g. "spec.mtls.mode"
	Message   string
}

// Input is one immutable snapshot of everything Warden knows about the mesh.
// Nothing may modify an Input after Build returns it.
type Input struct {
	Mesh          *meshv1alpha1.MeshConfig // never nil; defaults applied
	RootNamespace string                   // MeshConfig rootNamespace, default istio-system
	TrustDomain   string                   // MeshConfig trustDomain, default cluster.local
	DomainSuffix  string                   // cluster.local
	// MultipleCustomAuthzProviders is the mesh ConfigMap's
	// PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS (MultipleCustomAuthzProvidersKey).
	MultipleCustomAuthzProviders bool

	Namespaces      map[string]*Namespace
	ServiceAccounts map[string]bool // "ns/name"
	Workloads       []*Workload     // sorted by namespace, name
	Services        []*Service      // sorted by namespace, name

	// Security and networking objects, each sorted by (creationTimestamp, name, namespace),
	// the order Istio uses for "oldest wins".
	PeerAuthentications    []*Config[*security.PeerAuthentication]
	RequestAuthentications []*Config[*security.RequestAuthentication]
	AuthorizationPolicies  []*Config[*security.AuthorizationPolicy]
	DestinationRules       []*Config[*networking.DestinationRule]
	Gateways               []*Config[*networking.Gateway]
	VirtualServices        []*Config[*networking.VirtualService]
	// ServiceEntries add hosts outside (or inside) the mesh to the registry
	// (serviceentry.go in translate builds their clusters and listeners).
	ServiceEntries []*Config[*networking.ServiceEntry]

	// EndpointSlices, sorted by namespace, name. When a Service has slices (label
	// kubernetes.io/service-name), Endpoints uses them instead of the selector.
	EndpointSlices []*discoveryv1.EndpointSlice

	// JWKS holds the key sets of RequestAuthentication jwksUri values, by URI, as
	// fetched by wardend (see jwks_input.go); nil when nothing fetched them.
	JWKS map[string]JWKSResult

	// Diagnostics for objects that were rejected or that carry warnings, sorted by source.
	Diagnostics []Diagnostic

	// Rejected lists objects whose current version was rejected (see Diagnostics) and
	// that are absent from this Input because no earlier good version was known.
	// Translation uses it to fail closed for the scope of a rejected security object.
	Rejected []Meta
	// Stale lists objects whose current version was rejected but whose last good
	// version (the one in this Input) keeps serving. Each also has an error Diagnostic.
	Stale []Meta

	// Version is a short content hash of the accepted objects (not of Source positions
	// nor Diagnostics), for logs and status: the same manifests give the same Version.
	Version string

	objects []Object // accepted objects, the basis of Version and of last-good retention
	index   *index
}
