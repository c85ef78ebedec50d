package scenario

import "time"

// Scenario is one scenario file.
type Scenario struct {
	// Name is unique among the scenarios that run together and kebab-case.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Manifests are applied in order before the first step.
	Manifests []ManifestRef `json:"manifests,omitempty"`
	// Apps configures the test app of a workload, keyed by `namespace/name`.
	Apps map[string]App `json:"apps,omitempty"`
	// Externals (format "egress") are hosts outside the mesh (external.go).
	Externals []External `json:"externals,omitempty"`
	// Steps run in order; every step has a name after loading.
	Steps []Step `json:"steps"`

	// Path is the scenario file's path as given to Load.
	Path string `json:"-"`
	// Dir is the absolute directory of the scenario file; relative paths in the
	// scenario are resolved against it.
	Dir string `json:"-"`
}

// ManifestRef is one manifests or apply entry: a file or inline YAML, either possibly
// holding several documents.
type ManifestRef struct {
	// Path names a file relative to the scenario file's directory.
	Path string `json:"path,omitempty"`
	// Namespace fills metadata.namespace where absent, like `kubectl apply -n`.
	Namespace string `json:"namespace,omitempty"`
	// Inline is YAML given in the scenario itself.
	Inline string `json:"inline,omitempty"`
}

// App is the behaviour of the test app of one workload. Its JSON encoding is the test
// app's configuration format.
type App struct {
	// Forward maps a request path to an upstream URL the app calls and relays.
	Forward map[string]string `json:"forward,omitempty"`
	// Static maps a request path to fixed content.
	Static map[string]string `json:"static,omitempty"`
	// ExtAuthz makes the app an HTTP ext_authz server.
	ExtAuthz bool `json:"extAuthz,omitempty"`
	// ExtAuthzGrpc (format 1.1) makes the app a gRPC ext_authz server
	// (envoy.service.auth.v3.Authorization) with the same decision.
	ExtAuthzGrpc bool `json:"extAuthzGrpc,omitempty"`
	// ExtAuthzAllowServiceAccount (format 1.1, with extAuthzGrpc) also allows checks
	// whose source principal ends in /sa/<name>: TCP connections from that service
	// account (as Istio's sample server's -allow_service_account).
	ExtAuthzAllowServiceAccount string `json:"extAuthzAllowServiceAccount,omitempty"`
	// TCPEcho (format 1.2) lists container ports that serve a line echo whatever the
	// Service ports targeting them are named (unnamed, postgres, ...).
	TCPEcho []int `json:"tcpEcho,omitempty"`
	// ServerFirst (format 1.2) lists container ports whose line echo greets first: on
	// accept it sends `warden-banner <port>` before reading anything (SMTP-like).
	ServerFirst []int `json:"serverFirst,omitempty"`
}

// Step is one step. Exactly one of Request, PeerCertificate, Apply and Delete is set.
type Step struct {
	// Name defaults to `step-<index>`, counting from 1.
	Name            string        `json:"name,omitempty"`
	Request         *Request      `json:"request,omitempty"`
	PeerCertificate *PeerCert     `json:"peerCertificate,omitempty"`
	Apply           []ManifestRef `json:"apply,omitempty"`
	Delete          []ObjectRef   `json:"delete,omitempty"`
	// Expect is required for request and peerCertificate steps and not allowed for
	// apply and delete steps.
	Expect *Expect `json:"expect,omitempty"`
}

// StepKind names what a step does.
type StepKind string

// The step kinds.
const (
	KindRequest         StepKind = "request"
	KindPeerCertificate StepKind = "peerCertificate"
	KindApply           StepKind = "apply"
	KindDelete          StepKind = "delete"
)

// Kind reports what the step does; it is empty only for a step that did not validate.
func (s *Step) Kind() StepKind {
	switch {
	case s.Request != nil:
		return KindRequest
	case s.PeerCertificate != nil:
		return KindPeerCertificate
	case s.Apply != nil:
		return KindApply
	case s.Delete != nil:
		return KindDelete
	}
	return ""
}

// Request is an HTTP request (URL set) or a raw TCP exchange (TCP set).
type Request struct {
	// From is the calling pod as `namespace/name`, or Outside.
	From string `json:"from"`
	// URL gives the Host header and the path of an HTTP request.
	URL string `json:"url,omitempty"`
	// TCP is `host:port` for a one-line TCP echo exchange.
	TCP string `json:"tcp,omitempty"`
	// ServerFirst (format 1.2, tcp only): the client sends nothing until the server's
	// greeting line arrived, then does the echo exchange.
	ServerFirst bool `json:"serverFirst,omitempty"`
	// To, `namespace/name:port`, connects to that pod and port instead of resolving
	// the URL or TCP host.
	To string `json:"to,omitempty"`
	// Method defaults to GET for HTTP requests.
	Method  string            `json:"method,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// Outside is the Request.From value of a caller that is not in the mesh.
const Outside = "outside"

// PeerCert is a TLS handshake from a pod's network namespace, with its workload
// certificate, straight to an endpoint of a service.
type PeerCert struct {
	// From is the calling pod as `namespace/name`.
	From string `json:"from"`
	// To is the service as `host:port`.
	To string `json:"to"`
}

// Expect is what a step must observe.
type Expect struct {
	// Status is the HTTP status the caller received; 0 when not expected.
	Status          int    `json:"status,omitempty"`
	BodyContains    string `json:"bodyContains,omitempty"`
	BodyNotContains string `json:"bodyNotContains,omitempty"`
	// ConnectionError means no HTTP response (or no TCP echo) arrived at all.
	ConnectionError bool `json:"connectionError,omitempty"`
	// Echo means the TCP line came back.
	Echo bool `json:"echo,omitempty"`
	// URISAN is the URI SAN the server's certificate must carry.
	URISAN string `json:"uriSAN,omitempty"`
	// ChainsToMeshRoot means the server's chain must verify against the mesh root.
	ChainsToMeshRoot bool `json:"chainsToMeshRoot,omitempty"`
	// MaxValidity is a time.ParseDuration string bounding the certificate's lifetime
	// (NotAfter - NotBefore); see MaxValidityDuration.
	MaxValidity string `json:"maxValidity,omitempty"`

	// ResponseHeaders (format 1.1) maps a response header name (any case) to a value
	// that one of the header's values must equal exactly.
	ResponseHeaders map[string]string `json:"responseHeaders,omitempty"`
	// ResponseHeadersAbsent (format 1.1) lists response headers that must not be sent.
	ResponseHeadersAbsent []string `json:"responseHeadersAbsent,omitempty"`
	// EnvoyStats (format 1.1) checks what a proxy's Envoy counted during the request.
	EnvoyStats *EnvoyStats `json:"envoyStats,omitempty"`
}

// EnvoyStats names counters of one proxy's Envoy admin /stats and how much each must
// grow across the request (read before it is sent and after its response).
type EnvoyStats struct {
	// Pod is the proxy, `namespace/name` (a sidecar or a gateway).
	Pod string `json:"pod"`
	// Increase maps a counter's full name, as /stats prints it (for example
	// http.inbound_0.0.0.0_8000.rbac.istio_dry_run_deny_shadow_denied), to its growth;
	// a counter Envoy never created counts as 0.
	Increase map[string]int `json:"increase"`
}

// MaxValidityDuration returns MaxValidity parsed, or 0 when it is not set. Loading
// has validated it, so an unparsable value only occurs on a hand-built Expect, and
// also yields 0.
func (e *Expect) MaxValidityDuration() time.Duration {
	if e == nil || e.MaxValidity == "" {
		return 0
	}
	d, err := time.ParseDuration(e.MaxValidity)
	if err != nil {
		return 0
	}
	return d
}

// ObjectRef names an object to delete.
type ObjectRef struct {
	// APIVersion optionally narrows Kind to one API group and version.
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	// Namespace is required for namespaced kinds and empty for cluster-scoped ones.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}
