package authz

import (
	"cmp"
	"slices"
	"sync"

	security "istio.io/api/security/v1beta1"

	"github.com/wardenmesh/warden/translate/internal/shared"
	"github.com/wardenmesh/warden/watch"
)

const (
	severityError   = watch.SeverityError
	severityWarning = watch.SeverityWarning
)

type authzConfig = watch.Config[*security.AuthorizationPolicy]

// Index compiles the AuthorizationPolicies of one Input, each once per chain kind,
// shared by every proxy it applies to. It is safe for concurrent use.
type Index struct {
	in       *watch.Input
	mu       sync.Mutex
	compiled map[compileKey]*shared.Lazy[*authzPolicy]
}

type compileKey struct {
	c   *authzConfig
	tcp bool
}

// NewIndex prepares the policies of in for compiling.
func NewIndex(in *watch.Input) *Index {
	return &Index{in: in, compiled: map[compileKey]*shared.Lazy[*authzPolicy]{}}
}

func (x *Index) compile(c *authzConfig, tcp bool) *authzPolicy {
	return shared.Cached(&x.mu, x.compiled, compileKey{c, tcp}, func() *authzPolicy { return compilePolicy(x.in, c, tcp) })
}

// Set is what applies to one workload: the policies compiled for HTTP chains and
// for TCP chains (same order: by namespace, then name). A nil Set has no policies.
type Set struct {
	in        *watch.Input
	http, tcp []*authzPolicy
}

// Set compiles the policies that apply to one workload. attached are the policies
// that attach to it (translate decides that, with every other policy kind);
// rejected are the rejected AuthorizationPolicies (no good version known) whose
// scope covers it: their selector is unknown, so each denies every request.
func (x *Index) Set(attached []*authzConfig, rejected []*watch.Meta) *Set {
	set := &Set{in: x.in}
	for _, c := range attached {
		set.http = append(set.http, x.compile(c, false))
		set.tcp = append(set.tcp, x.compile(c, true))
	}
	for _, m := range rejected {
		p := &authzPolicy{meta: m, action: actionDeny,
			invalid: "the policy was rejected and no earlier version is known; every workload of its namespace denies all requests until it is fixed"}
		set.http = append(set.http, p)
		set.tcp = append(set.tcp, p)
	}
	order := func(a, b *authzPolicy) int {
		return cmp.Or(cmp.Compare(a.meta.Namespace, b.meta.Namespace), cmp.Compare(a.meta.Name, b.meta.Name))
	}
	slices.SortStableFunc(set.http, order)
	slices.SortStableFunc(set.tcp, order)
	return set
}

// Empty reports whether no policy applies.
func (s *Set) Empty() bool { return s == nil || len(s.http) == 0 }

// Applied describes one policy of a Set, for `wardenctl describe`.
type Applied struct {
	Meta    *watch.Meta
	Action  string // ALLOW, DENY, AUDIT or CUSTOM
	DryRun  bool
	Invalid string // why the policy denies everything; "" when valid
	// CustomDeny says why a CUSTOM policy's provider is not called and its rules deny
	// what they match instead (unknown provider, or several providers per workload).
	CustomDeny string
	// HTTPRules and TCPRules are the indexes of spec.rules that survive on HTTP and
	// on TCP chains (a rule with only HTTP fields has no TCP form).
	HTTPRules, TCPRules []int
}

// Policies lists the policies of s in evaluation order.
func (s *Set) Policies() []Applied {
	if s == nil {
		return nil
	}
	deny := map[*authzPolicy]string{}
	for _, g := range customGroups(s.in, s.http) {
		for _, p := range g.pols {
			deny[p] = g.deny
		}
	}
	out := make([]Applied, 0, len(s.http))
	for i, hp := range s.http {
		tp := s.tcp[i]
		out = append(out, Applied{Meta: hp.meta, Action: hp.action.String(), DryRun: hp.dryRun, Invalid: hp.invalid,
			CustomDeny: deny[hp], HTTPRules: ruleIndexes(hp), TCPRules: ruleIndexes(tp)})
	}
	return out
}

func ruleIndexes(p *authzPolicy) []int {
	out := []int{}
	for _, r := range p.rules {
		out = append(out, r.index)
	}
	return out
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
			out = append(out, watch.DiagnosticFor(p.meta, severityError, p.invalidField, msg))
		}
		for _, n := range p.notes {
			out = append(out, watch.DiagnosticFor(p.meta, severityWarning, n.field, n.message))
		}
	}
	return out
}

// Derive is NewIndex(in) that reuses x's compiled form of every policy in same (a
// policy of in mapped to its equal predecessor in x's Input). The caller guarantees
// that nothing else compilePolicy reads (MeshConfig, trust domain, Services) changed.
func (x *Index) Derive(in *watch.Input, same map[*authzConfig]*authzConfig) *Index {
	d := NewIndex(in)
	x.mu.Lock()
	defer x.mu.Unlock()
	for c, o := range same {
		for _, tcp := range []bool{false, true} {
			if l := x.compiled[compileKey{o, tcp}]; l != nil {
				d.compiled[compileKey{c, tcp}] = l
			}
		}
	}
	return d
}
