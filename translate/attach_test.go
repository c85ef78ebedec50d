package translate

import (
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/wardenmesh/warden/watch"
)

// The expectations follow Istio: pilot/pkg/model/policyattachment.go
// (ShouldAttachPolicy, isSelected: "selector == nil || SubsetOf"), its callers
// pilot/pkg/model/authentication.go (getConfigsForWorkload) and authorization.go
// (ListAuthorizationPolicies), pilot/pkg/security/authn/policy_applier.go
// (ComposePeerAuthentication: "Selector == nil || len(MatchLabels) == 0" is the
// namespace or mesh level), pilot/pkg/model/push_context.go (mergeGateways) and
// pilot/pkg/model/sidecar.go (SidecarScope.DestinationRule: "GetWorkloadSelector()
// != nil").

const attachRoot = "istio-system"

func meta(kind, ns string) watch.Meta { return watch.Meta{Kind: kind, Namespace: ns, Name: "p"} }

// sel is a selector: nil for none, an empty map for `selector: {}`.
func sel(labels map[string]string) *typev1beta1.WorkloadSelector {
	if labels == nil {
		return nil
	}
	return &typev1beta1.WorkloadSelector{MatchLabels: labels}
}

func paRef(ns string, labels map[string]string) attachPolicy {
	return peerAuthnPolicy(&paConfig{Meta: meta("PeerAuthentication", ns), Spec: &security.PeerAuthentication{Selector: sel(labels)}})
}

func raRef(ns string, labels map[string]string, refs ...*typev1beta1.PolicyTargetReference) attachPolicy {
	return requestAuthnPolicy(&raConfig{Meta: meta("RequestAuthentication", ns),
		Spec: &security.RequestAuthentication{Selector: sel(labels), TargetRefs: refs}})
}

func apRef(ns string, labels map[string]string, refs ...*typev1beta1.PolicyTargetReference) attachPolicy {
	return authzPolicyRef(&authzConfig{Meta: meta("AuthorizationPolicy", ns),
		Spec: &security.AuthorizationPolicy{Selector: sel(labels), TargetRefs: refs}})
}

func gwRef(ns string, labels map[string]string) attachPolicy {
	return gatewayPolicy(&gatewayConfig{Meta: meta("Gateway", ns), Spec: &networking.Gateway{Selector: labels}})
}

func drRef(ns string, labels map[string]string) attachPolicy {
	return destinationRulePolicy(&drConfig{Meta: meta("DestinationRule", ns),
		Spec: &networking.DestinationRule{Host: "*", WorkloadSelector: sel(labels)}})
}

func TestAttach(t *testing.T) {
	web := map[string]string{"app": "web", "version": "v1"}
	sidecar := attachWorkload{namespace: "foo", pod: "web", labels: web}
	gateway := attachWorkload{namespace: "foo", pod: "ingress", labels: map[string]string{"istio": "ingressgateway"}, gateway: true}
	ref := &typev1beta1.PolicyTargetReference{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw"}
	none := map[string]string{}
	app := map[string]string{"app": "web"}
	other := map[string]string{"app": "other"}
	cases := []struct {
		name   string
		policy attachPolicy
		w      attachWorkload
		want   Scope
		diag   string // substring of the diagnostic's message; "" for none
	}{
		// PeerAuthentication (ComposePeerAuthentication).
		{name: "PA no selector", policy: paRef("foo", nil), w: sidecar, want: ScopeNamespace},
		{name: "PA empty matchLabels is no selector", policy: paRef("foo", none), w: sidecar, want: ScopeNamespace},
		{name: "PA root no selector is mesh", policy: paRef(attachRoot, nil), w: sidecar, want: ScopeMesh},
		{name: "PA root empty matchLabels is mesh", policy: paRef(attachRoot, none), w: sidecar, want: ScopeMesh},
		{name: "PA matching labels", policy: paRef("foo", app), w: sidecar, want: ScopeWorkload},
		{name: "PA non-matching labels", policy: paRef("foo", other), w: sidecar, want: ScopeNone},
		{name: "PA root selector is ignored", policy: paRef(attachRoot, app), w: sidecar, want: ScopeNone},
		{name: "PA other namespace", policy: paRef("bar", nil), w: sidecar, want: ScopeNone},

		// RequestAuthentication (ShouldAttachPolicy via getConfigsForWorkload).
		{name: "RA no selector", policy: raRef("foo", nil), w: sidecar, want: ScopeNamespace},
		{name: "RA empty matchLabels is no selector", policy: raRef("foo", none), w: sidecar, want: ScopeNamespace},
		{name: "RA root empty matchLabels is mesh", policy: raRef(attachRoot, none), w: sidecar, want: ScopeMesh},
		{name: "RA matching labels", policy: raRef("foo", app), w: sidecar, want: ScopeWorkload},
		{name: "RA non-matching labels", policy: raRef("foo", other), w: sidecar, want: ScopeNone},
		{name: "RA root selector reaches every namespace", policy: raRef(attachRoot, app), w: sidecar, want: ScopeWorkload},
		{name: "RA other namespace", policy: raRef("bar", nil), w: sidecar, want: ScopeNone},
		{name: "RA targetRefs never attach", policy: raRef("foo", nil, ref), w: sidecar, want: ScopeNone,
			diag: "does not apply to the sidecar of foo/web"},

		// AuthorizationPolicy (ShouldAttachPolicy via ListAuthorizationPolicies).
		{name: "AP no selector", policy: apRef("foo", nil), w: sidecar, want: ScopeNamespace},
		{name: "AP empty matchLabels is no selector", policy: apRef("foo", none), w: sidecar, want: ScopeNamespace},
		{name: "AP root no selector is mesh", policy: apRef(attachRoot, nil), w: sidecar, want: ScopeMesh},
		{name: "AP root empty matchLabels is mesh", policy: apRef(attachRoot, none), w: sidecar, want: ScopeMesh},
		{name: "AP matching labels", policy: apRef("foo", app), w: sidecar, want: ScopeWorkload},
		{name: "AP non-matching labels", policy: apRef("foo", other), w: sidecar, want: ScopeNone},
		{name: "AP root selector reaches every namespace", policy: apRef(attachRoot, app), w: sidecar, want: ScopeWorkload},
		{name: "AP other namespace", policy: apRef("bar", nil), w: sidecar, want: ScopeNone},
		{name: "AP other namespace with targetRefs: no diagnostic", policy: apRef("bar", nil, ref), w: sidecar, want: ScopeNone},
		{name: "AP targetRefs on a sidecar", policy: apRef("foo", nil, ref), w: sidecar, want: ScopeNone,
			diag: "targetRefs select gateways and waypoints: this policy does not apply to the sidecar of foo/web"},
		{name: "AP targetRefs on an ingress gateway", policy: apRef("foo", nil, ref), w: gateway, want: ScopeNone,
			diag: "which Warden does not serve: this policy does not apply to the gateway foo/ingress"},
		{name: "AP legacy targetRef", policy: authzPolicyRef(&authzConfig{Meta: meta("AuthorizationPolicy", "foo"),
			Spec: &security.AuthorizationPolicy{TargetRef: ref}}), w: sidecar, want: ScopeNone, diag: "targetRefs select"},
		// An Istio ingress gateway (no gateway.networking.k8s.io/gateway-name label)
		// takes ShouldAttachPolicy's non-Gateway-API branch: selectors as on a sidecar.
		{name: "AP selector on an ingress gateway", policy: apRef("foo", map[string]string{"istio": "ingressgateway"}), w: gateway, want: ScopeWorkload},
		{name: "AP empty matchLabels on an ingress gateway", policy: apRef("foo", none), w: gateway, want: ScopeNamespace},
		{name: "AP sidecar selector misses the gateway", policy: apRef("foo", app), w: gateway, want: ScopeNone},

		// Gateway (mergeGateways): every namespace; no or empty selector is every gateway.
		{name: "Gateway no selector", policy: gwRef("bar", nil), w: gateway, want: ScopeMesh},
		{name: "Gateway empty selector", policy: gwRef("bar", none), w: gateway, want: ScopeMesh},
		{name: "Gateway matching selector in another namespace", policy: gwRef("bar", map[string]string{"istio": "ingressgateway"}), w: gateway, want: ScopeWorkload},
		{name: "Gateway non-matching selector", policy: gwRef("foo", other), w: gateway, want: ScopeNone},

		// DestinationRule workloadSelector (SidecarScope.DestinationRule).
		{name: "DR no workloadSelector", policy: drRef("foo", nil), w: sidecar, want: ScopeNamespace},
		{name: "DR root no workloadSelector", policy: drRef(attachRoot, nil), w: sidecar, want: ScopeMesh},
		{name: "DR empty workloadSelector picks its namespace", policy: drRef("foo", none), w: sidecar, want: ScopeWorkload},
		{name: "DR empty workloadSelector is private", policy: drRef("bar", none), w: sidecar, want: ScopeNone},
		{name: "DR matching workloadSelector", policy: drRef("foo", app), w: sidecar, want: ScopeWorkload},
		{name: "DR non-matching workloadSelector", policy: drRef("foo", other), w: sidecar, want: ScopeNone},
		{name: "DR root workloadSelector stays in the root namespace", policy: drRef(attachRoot, app), w: sidecar, want: ScopeNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := attach(attachRoot, tc.policy, tc.w)
			if got.scope != tc.want {
				t.Errorf("scope = %q, want %q", got.scope, tc.want)
			}
			if got.attached() != (tc.want != ScopeNone) {
				t.Errorf("attached() = %v with scope %q", got.attached(), got.scope)
			}
			switch {
			case tc.diag == "" && got.diag != nil:
				t.Errorf("unexpected diagnostic %q", got.diag.Message)
			case tc.diag != "" && got.diag == nil:
				t.Errorf("no diagnostic, want one containing %q", tc.diag)
			case tc.diag != "":
				if !strings.Contains(got.diag.Message, tc.diag) || got.diag.Field != "spec.targetRefs" || got.diag.Severity != severityWarning {
					t.Errorf("diagnostic = %+v, want a spec.targetRefs warning containing %q", *got.diag, tc.diag)
				}
			}
			// The scope of an attached policy is the one it has everywhere.
			if got.attached() && policyScope(attachRoot, tc.policy) != got.scope {
				t.Errorf("policyScope = %q, attach scope %q", policyScope(attachRoot, tc.policy), got.scope)
			}
		})
	}
}

func TestAttachRejected(t *testing.T) {
	w := attachWorkload{namespace: "foo", pod: "web", labels: map[string]string{"app": "web"}}
	for _, tc := range []struct {
		ns   string
		want Scope
	}{{"foo", ScopeNamespace}, {attachRoot, ScopeMesh}, {"bar", ScopeNone}} {
		m := meta("AuthorizationPolicy", tc.ns)
		if got := attachRejected(attachRoot, &m, w); got != tc.want {
			t.Errorf("rejected policy in %s: scope %q, want %q", tc.ns, got, tc.want)
		}
	}
}

func TestScopeString(t *testing.T) {
	for s, want := range map[Scope]string{ScopeNone: "", ScopeMesh: "mesh", ScopeNamespace: "namespace", ScopeWorkload: "workload"} {
		if s.String() != want {
			t.Errorf("Scope(%d) = %q, want %q", s, s.String(), want)
		}
	}
}
