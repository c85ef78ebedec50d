package translate

import (
	"cmp"
	"slices"
	"sync"

	security "istio.io/api/security/v1beta1"

	"github.com/wardenmesh/warden/watch"
)

type authzConfig = watch.Config[*security.AuthorizationPolicy]

// authzIndex holds the AuthorizationPolicies of an Input by namespace and caches
// each policy's compiled form, shared by every proxy it applies to.
type authzIndex struct {
	in       *watch.Input
	byNS     map[string][]*authzConfig
	rejected map[string][]watch.Meta // rejected AuthorizationPolicies by namespace

	mu       sync.Mutex
	compiled map[compileKey]*lazy[*authzPolicy]
}

type compileKey struct {
	c   *authzConfig
	tcp bool
}

func newAuthzIndex(in *watch.Input) *authzIndex {
	x := &authzIndex{
		in:       in,
		byNS:     map[string][]*authzConfig{},
		rejected: map[string][]watch.Meta{},
		compiled: map[compileKey]*lazy[*authzPolicy]{},
	}
	for _, c := range in.AuthorizationPolicies {
		x.byNS[c.Namespace] = append(x.byNS[c.Namespace], c)
	}
	for _, m := range in.Rejected {
		if m.Kind == "AuthorizationPolicy" {
			x.rejected[m.Namespace] = append(x.rejected[m.Namespace], m)
		}
	}
	return x
}

func (x *authzIndex) compile(c *authzConfig, tcp bool) *authzPolicy {
	return cached(&x.mu, x.compiled, compileKey{c, tcp}, func() *authzPolicy { return compilePolicy(x.in, c, tcp) })
}

// authzSet is what applies to one workload: the policies compiled for HTTP chains and
// for TCP chains (same order), and selection diagnostics.
type authzSet struct {
	http, tcp []*authzPolicy
	diags     []watch.Diagnostic
}

func (s *authzSet) empty() bool { return len(s.http) == 0 }

// selectAuthz lists the policies that apply to a sidecar workload: those of the root
// namespace (mesh-wide) and of its own namespace whose selector is a subset of its
// labels. Policies with targetRefs do not apply to sidecars. A rejected policy (no
// good version known) applies to its whole namespace, or the mesh for the root
// namespace, because its selector is unknown: its scope denies every request.
func (x *authzIndex) selectAuthz(w *watch.Workload) *authzSet {
	set := &authzSet{}
	namespaces := []string{x.in.RootNamespace}
	if w.Namespace != x.in.RootNamespace {
		namespaces = append(namespaces, w.Namespace)
	}
	var chosen []*authzConfig
	for _, ns := range namespaces {
		for _, c := range x.byNS[ns] {
			if len(c.Spec.GetTargetRefs()) > 0 || c.Spec.GetTargetRef() != nil {
				set.diags = append(set.diags, diagOf(&c.Meta, severityWarning, "spec.targetRefs",
					"targetRefs select gateways and waypoints: this policy does not apply to the sidecar of "+w.Namespace+"/"+w.PodName))
				continue
			}
			if subsetOf(c.Spec.GetSelector().GetMatchLabels(), w.PodLabels) {
				chosen = append(chosen, c)
			}
		}
	}
	for _, c := range chosen {
		set.http = append(set.http, x.compile(c, false))
		set.tcp = append(set.tcp, x.compile(c, true))
	}
	for _, ns := range namespaces {
		for i := range x.rejected[ns] {
			m := &x.rejected[ns][i]
			p := &authzPolicy{meta: m, action: actionDeny,
				invalid: "the policy was rejected and no earlier version is known; every workload of its namespace denies all requests until it is fixed"}
			set.http = append(set.http, p)
			set.tcp = append(set.tcp, p)
		}
	}
	order := func(a, b *authzPolicy) int {
		return cmp.Or(cmp.Compare(a.meta.Namespace, b.meta.Namespace), cmp.Compare(a.meta.Name, b.meta.Name))
	}
	slices.SortStableFunc(set.http, order)
	slices.SortStableFunc(set.tcp, order)
	return set
}

// subsetOf reports whether every selector label is in labels; an empty selector
// selects everything.
func subsetOf(selector, labels map[string]string) bool {
	for k, v := range selector {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

func diagOf(m *watch.Meta, severity, field, msg string) watch.Diagnostic {
	return watch.Diagnostic{Severity: severity, Source: m.Source, Kind: m.Kind, Namespace: m.Namespace,
		Name: m.Name, Field: field, Message: msg}
}

// policyDiags are the diagnostics of the policies of one chain kind.
func policyDiags(pols []*authzPolicy) []watch.Diagnostic {
	var out []watch.Diagnostic
	for _, p := range pols {
		if p.invalid != "" {
			msg := p.invalid
			if p.meta.Kind == "AuthorizationPolicy" && p.invalidField != "" {
				msg += ": the workloads it selects deny every request (fail closed)"
			}
			if p.dryRun {
				msg = p.invalid + " (dry-run: reported only, nothing is denied)"
			}
			out = append(out, diagOf(p.meta, severityError, p.invalidField, msg))
		}
		for _, n := range p.notes {
			out = append(out, diagOf(p.meta, severityWarning, n.field, n.message))
		}
	}
	return out
}
