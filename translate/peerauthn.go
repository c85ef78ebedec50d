package translate

import (
	"slices"

	security "istio.io/api/security/v1beta1"

	"github.com/wardenmesh/warden/watch"
)

// Mode is a resolved PeerAuthentication mTLS mode. The zero value is PERMISSIVE, the
// mesh default when no policy applies.
type Mode uint8

const (
	ModePermissive Mode = iota // accept mTLS and plaintext
	ModeStrict                 // require mTLS with a client certificate
	ModeDisable                // plaintext only
)

func (m Mode) String() string {
	switch m {
	case ModeStrict:
		return "STRICT"
	case ModeDisable:
		return "DISABLE"
	default:
		return "PERMISSIVE"
	}
}

// modeOf converts an API mode; ok is false for UNSET (and a nil mtls), which inherits.
func modeOf(m *security.PeerAuthentication_MutualTLS) (mode Mode, ok bool) {
	switch m.GetMode() {
	case security.PeerAuthentication_MutualTLS_STRICT:
		return ModeStrict, true
	case security.PeerAuthentication_MutualTLS_PERMISSIVE:
		return ModePermissive, true
	case security.PeerAuthentication_MutualTLS_DISABLE:
		return ModeDisable, true
	default:
		return ModePermissive, false
	}
}

// MTLS is the PeerAuthentication decision for one workload.
type MTLS struct {
	// Mode is the workload-wide mode.
	Mode Mode
	// Policy is the policy ("ns/name") that decided Mode, or "" for the mesh default.
	Policy string
	// Ports holds the portLevelMtls overrides of the selected workload policy, keyed by
	// target (container) port. Nil when there are none.
	Ports map[uint32]Mode
	// PortPolicy is the policy that decided each entry of Ports: the workload policy,
	// or, for a port entry with mode UNSET, whichever policy decided Mode.
	PortPolicy map[uint32]string

	// The policy chosen at each level ("ns/name"), "" when none. A chosen policy with
	// mode UNSET is listed here but does not decide Mode.
	MeshPolicy      string
	NamespacePolicy string
	WorkloadPolicy  string

	// Rejected is a PeerAuthentication in the workload's scope ("ns/name") whose
	// current version was rejected with no good version to keep serving. Its mode and
	// selector are unknown, so the workload fails closed: STRICT on every port, Policy
	// and every PortPolicy naming it.
	Rejected string
}

// PortMode is the mode a connection to target port p gets.
func (m MTLS) PortMode(p uint32) Mode {
	mode, _ := m.PortDecision(p)
	return mode
}

// PortDecision is the mode for target port p and the policy that decided it.
func (m MTLS) PortDecision(p uint32) (Mode, string) {
	if mode, ok := m.Ports[p]; ok {
		return mode, m.PortPolicy[p]
	}
	return m.Mode, m.Policy
}

// PortList is the keys of Ports in ascending order.
func (m MTLS) PortList() []uint32 {
	out := make([]uint32, 0, len(m.Ports))
	for p := range m.Ports {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// ResolveMTLS returns the PeerAuthentication decision for a workload with podLabels in
// namespace, with Istio's semantics: mesh (root namespace, no selector), namespace and
// workload (non-root namespace, selector subset of the labels) levels; the oldest
// policy wins per level; UNSET inherits; portLevelMtls only from the workload policy.
// Root-namespace policies with a selector are ignored, as in Istio.
//
// It scans every policy; callers resolving many workloads should use an Index.
func ResolveMTLS(in *watch.Input, namespace string, podLabels map[string]string) MTLS {
	return newPAIndex(in).resolve(namespace, podLabels)
}

// paIndex holds the policy chosen per level, computed once per Input.
type paIndex struct {
	root      string
	mesh      *watch.Config[*security.PeerAuthentication]
	namespace map[string]*watch.Config[*security.PeerAuthentication]
	// workload lists the selector policies of each non-root namespace, oldest first.
	workload map[string][]*watch.Config[*security.PeerAuthentication]
	// rejected lists the PeerAuthentications with no servable version (Input.Rejected).
	rejected []*watch.Meta
}

func newPAIndex(in *watch.Input) *paIndex {
	x := &paIndex{
		root:      in.RootNamespace,
		namespace: map[string]*watch.Config[*security.PeerAuthentication]{},
		workload:  map[string][]*watch.Config[*security.PeerAuthentication]{},
	}
	// in.PeerAuthentications is sorted oldest first (creationTimestamp, name,
	// namespace), so the first policy seen at a level is the one that wins.
	for i := range in.Rejected {
		if in.Rejected[i].Kind == "PeerAuthentication" {
			x.rejected = append(x.rejected, &in.Rejected[i])
		}
	}
	for _, pa := range in.PeerAuthentications {
		switch policyScope(in.RootNamespace, peerAuthnPolicy(pa)) {
		case ScopeMesh:
			if x.mesh == nil {
				x.mesh = pa
			}
		case ScopeNamespace:
			if x.namespace[pa.Namespace] == nil {
				x.namespace[pa.Namespace] = pa
			}
		case ScopeWorkload:
			x.workload[pa.Namespace] = append(x.workload[pa.Namespace], pa)
		}
	}
	return x
}

// namespaceMode is the mode the mesh and namespace levels alone decide for
// namespace, and the policy that decided it ("" when neither sets one: PERMISSIVE).
// Istio's clients choose auto mTLS from this mode only (pilot/pkg/model/
// push_context.go BestEffortInferServiceMTLSMode, GetNamespaceMutualTLSMode);
// Warden's follow each workload's full decision (resolve).
func (x *paIndex) namespaceMode(namespace string) (Mode, string) {
	mode, policy := ModePermissive, ""
	for _, pa := range []*watch.Config[*security.PeerAuthentication]{x.mesh, x.namespace[namespace]} {
		if pa == nil {
			continue
		}
		if m, ok := modeOf(pa.Spec.GetMtls()); ok {
			mode, policy = m, pa.Key()
		}
	}
	return mode, policy
}

func (x *paIndex) resolve(namespace string, labels map[string]string) MTLS {
	m := x.resolveValid(namespace, labels)
	for _, r := range x.rejected {
		if attachRejected(x.root, r, attachWorkload{namespace: namespace, labels: labels}) != ScopeNone {
			return m.failClosed(r.Key())
		}
	}
	return m
}

// failClosed is m overridden by the rejected policy key: STRICT everywhere. A typo in
// a policy never leaves a workload it might cover less protected than STRICT.
func (m MTLS) failClosed(key string) MTLS {
	m.Mode, m.Policy, m.Rejected = ModeStrict, key, key
	for p := range m.Ports {
		m.Ports[p], m.PortPolicy[p] = ModeStrict, key
	}
	return m
}

// resolveValid is the decision from the policies that have a servable version.
func (x *paIndex) resolveValid(namespace string, labels map[string]string) MTLS {
	var m MTLS
	if x.mesh != nil {
		m.MeshPolicy = x.mesh.Key()
		if mode, ok := modeOf(x.mesh.Spec.GetMtls()); ok {
			m.Mode, m.Policy = mode, m.MeshPolicy
		}
	}
	if ns := x.namespace[namespace]; ns != nil {
		m.NamespacePolicy = ns.Key()
		if mode, ok := modeOf(ns.Spec.GetMtls()); ok {
			m.Mode, m.Policy = mode, m.NamespacePolicy
		}
	}
	var wl *watch.Config[*security.PeerAuthentication]
	for _, pa := range x.workload[namespace] {
		if attach(x.root, peerAuthnPolicy(pa), attachWorkload{namespace: namespace, labels: labels}).scope == ScopeWorkload {
			wl = pa
			break
		}
	}
	if wl == nil {
		return m
	}
	m.WorkloadPolicy = wl.Key()
	if mode, ok := modeOf(wl.Spec.GetMtls()); ok {
		m.Mode, m.Policy = mode, m.WorkloadPolicy
	}
	if plm := wl.Spec.GetPortLevelMtls(); len(plm) > 0 {
		m.Ports = make(map[uint32]Mode, len(plm))
		m.PortPolicy = make(map[uint32]string, len(plm))
		for port, mtls := range plm {
			if mode, ok := modeOf(mtls); ok {
				m.Ports[port], m.PortPolicy[port] = mode, m.WorkloadPolicy
			} else {
				m.Ports[port], m.PortPolicy[port] = m.Mode, m.Policy
			}
		}
	}
	return m
}
