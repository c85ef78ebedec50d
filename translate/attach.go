package translate

import (
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/wardenmesh/warden/watch"
)

// Policy attachment: the one place that decides whether a policy (its namespace,
// selector and targetRefs) applies to a workload, for every kind translate reads.
// It follows Istio's single path, pilot/pkg/model/policyattachment.go
// (WorkloadPolicyMatcher.ShouldAttachPolicy, isSelected, GetTargetRefs), with the
// per-kind differences Istio has elsewhere:
//
//   - PeerAuthentication: pilot/pkg/model/authentication.go (getConfigsForWorkload)
//     and pilot/pkg/security/authn/policy_applier.go (ComposePeerAuthentication):
//     "selector == nil || len(selector.MatchLabels) == 0" is the namespace level (the
//     mesh level in the root namespace); a root-namespace policy with labels is
//     ignored.
//   - RequestAuthentication and AuthorizationPolicy: ShouldAttachPolicy through
//     getConfigsForWorkload and pilot/pkg/model/authorization.go
//     (ListAuthorizationPolicies): "selector == nil || SubsetOf(labels)", so an empty
//     matchLabels is no selector; from the root namespace a selector reaches every
//     namespace; a policy with targetRefs never attaches to a workload that is not a
//     Kubernetes Gateway API gateway or a waypoint (Warden serves neither).
//   - Gateway: pilot/pkg/model/push_context.go (mergeGateways): Gateways of every
//     namespace; no selector, or an empty one, selects every gateway proxy.
//   - DestinationRule workloadSelector: pilot/pkg/model/sidecar.go
//     (SidecarScope.DestinationRule) and push_context.go (setDestinationRules,
//     sortConfigBySelectorAndCreationTime) test "GetWorkloadSelector() != nil": a
//     present but empty workloadSelector is a selector rule that matches every
//     workload of its own namespace (SubsetOf of nothing), is private to that
//     namespace and ranks ahead of rules without a selector. Only a missing
//     workloadSelector makes a rule visible to other namespaces (through exportTo).
//
// Istio's matcher also takes the workload's Services: they only attach Service and
// ServiceEntry targetRefs on waypoints, which Warden does not serve, so they are not
// an input here.

// Scope is how far an attached policy reaches.
type Scope uint8

const (
	ScopeNone      Scope = iota // the policy does not attach
	ScopeMesh                   // the root namespace, no selector: every workload
	ScopeNamespace              // no selector: every workload of the policy's namespace
	ScopeWorkload               // a selector that matches the workload's labels
)

// String is the scope as `wardenctl describe` prints it ("" for ScopeNone).
func (s Scope) String() string {
	switch s {
	case ScopeMesh:
		return "mesh"
	case ScopeNamespace:
		return "namespace"
	case ScopeWorkload:
		return "workload"
	}
	return ""
}

// policyKind selects the per-kind differences of attach.
type policyKind uint8

const (
	kindPeerAuthentication policyKind = iota
	kindRequestAuthentication
	kindAuthorizationPolicy
	kindGateway
	kindDestinationRule
)

// attachPolicy is what attachment reads of a policy.
type attachPolicy struct {
	kind policyKind
	meta *watch.Meta
	// selector is the selector's labels; hasSelector says a selector is present at
	// all, which only a DestinationRule's workloadSelector tells apart from empty.
	selector    map[string]string
	hasSelector bool
	// targetRefs counts spec.targetRefs, or the legacy spec.targetRef (GetTargetRefs).
	targetRefs int
}

// attachWorkload is what attachment reads of a workload.
type attachWorkload struct {
	namespace string
	pod       string
	labels    map[string]string
	gateway   bool // an ingress gateway (Istio Gateway API gateways are not served)
}

func workloadOf(w *watch.Workload) attachWorkload {
	return attachWorkload{namespace: w.Namespace, pod: w.PodName, labels: w.PodLabels, gateway: w.Gateway}
}

// attachment is attach's answer: the scope (ScopeNone when the policy does not
// attach) and a diagnostic when the policy is ignored for a reason its author
// should hear about.
type attachment struct {
	scope Scope
	diag  *watch.Diagnostic
}

func (a attachment) attached() bool { return a.scope != ScopeNone }

type (
	paConfig      = watch.Config[*security.PeerAuthentication]
	raConfig      = watch.Config[*security.RequestAuthentication]
	gatewayConfig = watch.Config[*networking.Gateway]
	drConfig      = watch.Config[*networking.DestinationRule]
)

// targetable is any istio/api policy with Istio's selector and targetRef fields.
type targetable interface {
	GetTargetRef() *typev1beta1.PolicyTargetReference
	GetTargetRefs() []*typev1beta1.PolicyTargetReference
	GetSelector() *typev1beta1.WorkloadSelector
}

// targetRefsOf is Istio's GetTargetRefs: targetRefs, else the legacy targetRef.
func targetRefsOf(p targetable) []*typev1beta1.PolicyTargetReference {
	refs := p.GetTargetRefs()
	if len(refs) == 0 && p.GetTargetRef() != nil {
		refs = []*typev1beta1.PolicyTargetReference{p.GetTargetRef()}
	}
	return refs
}

func targetablePolicy(kind policyKind, m *watch.Meta, p targetable) attachPolicy {
	sel := p.GetSelector()
	return attachPolicy{kind: kind, meta: m, selector: sel.GetMatchLabels(), hasSelector: sel != nil,
		targetRefs: len(targetRefsOf(p))}
}

func peerAuthnPolicy(c *paConfig) attachPolicy {
	sel := c.Spec.GetSelector()
	return attachPolicy{kind: kindPeerAuthentication, meta: &c.Meta, selector: sel.GetMatchLabels(), hasSelector: sel != nil}
}

func requestAuthnPolicy(c *raConfig) attachPolicy {
	return targetablePolicy(kindRequestAuthentication, &c.Meta, c.Spec)
}

func authzPolicyRef(c *authzConfig) attachPolicy {
	return targetablePolicy(kindAuthorizationPolicy, &c.Meta, c.Spec)
}

func gatewayPolicy(c *gatewayConfig) attachPolicy {
	sel := c.Spec.GetSelector()
	return attachPolicy{kind: kindGateway, meta: &c.Meta, selector: sel, hasSelector: sel != nil}
}

func destinationRulePolicy(c *drConfig) attachPolicy {
	sel := c.Spec.GetWorkloadSelector()
	return attachPolicy{kind: kindDestinationRule, meta: &c.Meta, selector: sel.GetMatchLabels(), hasSelector: sel != nil}
}

// policyScope is the scope p has on every workload it attaches to, from its
// namespace and selector alone; ScopeNone when it attaches to no workload Warden
// serves: targetRefs, or a PeerAuthentication with labels in the root namespace.
func policyScope(root string, p attachPolicy) Scope {
	switch {
	case p.targetRefs > 0:
		return ScopeNone
	case p.kind == kindDestinationRule && p.hasSelector:
		// Istio tests the workloadSelector for nil, not for labels (see above).
		return ScopeWorkload
	case len(p.selector) > 0: // a selector with labels; an empty one is no selector
		if p.kind == kindPeerAuthentication && p.meta.Namespace == root {
			return ScopeNone // ignored by Istio (ComposePeerAuthentication)
		}
		return ScopeWorkload
	case p.meta.Namespace == root || p.kind == kindGateway:
		return ScopeMesh
	}
	return ScopeNamespace
}

// attach decides whether p applies to w, with root the mesh's root namespace.
//
// For a DestinationRule it decides only the workloadSelector: a rule without one
// attaches (ScopeNamespace, or ScopeMesh in the root namespace) and which proxies see
// it is then up to exportTo and the lookup order of drIndex.
func attach(root string, p attachPolicy, w attachWorkload) attachment {
	switch {
	case p.kind == kindGateway:
		// Gateways of every namespace select gateway proxies.
	case p.kind == kindDestinationRule:
		// A workloadSelector picks workloads of the rule's own namespace only; the
		// visibility of a rule without one is exportTo's.
		if p.hasSelector && p.meta.Namespace != w.namespace {
			return attachment{}
		}
	case p.meta.Namespace != root && p.meta.Namespace != w.namespace:
		return attachment{}
	}
	if p.targetRefs > 0 {
		return attachment{diag: targetRefsIgnored(p.meta, w)}
	}
	scope := policyScope(root, p)
	if scope == ScopeWorkload && !subsetOf(p.selector, w.labels) {
		return attachment{}
	}
	return attachment{scope: scope}
}

// attachRejected is the scope of a rejected policy (no good version known) for w:
// its selector is unknown, so it covers its whole namespace, or the mesh from the
// root namespace, and the workloads in that scope fail closed.
func attachRejected(root string, m *watch.Meta, w attachWorkload) Scope {
	if m.Namespace != root && m.Namespace != w.namespace {
		return ScopeNone
	}
	return policyScope(root, attachPolicy{kind: kindAuthorizationPolicy, meta: m})
}

// targetRefsIgnored is the warning for a policy with targetRefs, which select
// Kubernetes Gateway API gateways and waypoints: never a sidecar or an Istio
// ingress gateway, the only proxies Warden serves.
func targetRefsIgnored(m *watch.Meta, w attachWorkload) *watch.Diagnostic {
	msg := "targetRefs select gateways and waypoints: this policy does not apply to the sidecar of " + w.namespace + "/" + w.pod
	if w.gateway {
		msg = "targetRefs select Kubernetes Gateway API gateways and waypoints, which Warden does not serve: this policy does not apply to the gateway " + w.namespace + "/" + w.pod
	}
	d := watch.DiagnosticFor(m, severityWarning, "spec.targetRefs", msg)
	return &d
}

// subsetOf reports whether every selector label is in labels with the same value;
// an empty selector is a subset of everything (Istio's labels.Instance.SubsetOf).
func subsetOf(selector, labels map[string]string) bool {
	for k, v := range selector {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}
