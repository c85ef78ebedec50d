package authz

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/wardenmesh/warden/watch"
)

// CheckRequest is one request to a proxy's inbound side, as `wardenctl check`
// describes it. Zero fields mean "absent".
type CheckRequest struct {
	// FromPod is the calling pod, "<pod>.<namespace>". When set, its identity (if it
	// has a sidecar and the port is not DISABLE) and IP are used unless Principal or
	// SourceIP say otherwise.
	FromPod string `json:"fromPod,omitempty"`
	// Principal is the caller's identity, "<td>/ns/<ns>/sa/<sa>" or a spiffe:// URI;
	// "" with no FromPod means a plaintext caller outside the mesh.
	Principal string `json:"principal,omitempty"`
	SourceIP  string `json:"sourceIP,omitempty"`
	// RemoteIP is the original client address (X-Forwarded-For); default SourceIP.
	RemoteIP string `json:"remoteIP,omitempty"`
	// Port is the target (container) port; 0 picks the workload's first HTTP port.
	Port    uint32            `json:"port,omitempty"`
	Method  string            `json:"method,omitempty"` // default GET
	Path    string            `json:"path,omitempty"`   // default "/"; may carry a query
	Host    string            `json:"host,omitempty"`   // default "<service>.<namespace>" of the port
	Headers map[string]string `json:"headers,omitempty"`
	// Claims is the payload of a JWT that jwt_authn verified; nil for no token.
	Claims map[string]any `json:"claims,omitempty"`
	SNI    string         `json:"sni,omitempty"`
}

// RuleRef names a matched rule: the policy ("namespace/name") and its Envoy key.
type RuleRef struct {
	Policy string `json:"policy"`
	Rule   string `json:"rule"`
}

// CustomCall says that a CUSTOM rule matched, so Envoy asks the provider, which may deny.
type CustomCall struct {
	Provider string `json:"provider"`
	RuleRef
}

// DryRunResult is what the dry-run policies of one action would have decided.
type DryRunResult struct {
	Action   string   `json:"action"`   // ALLOW or DENY
	Decision string   `json:"decision"` // ALLOW or DENY
	Matched  *RuleRef `json:"matched,omitempty"`
}

// CheckResult explains the decision of a proxy's authorization filters.
type CheckResult struct {
	Proxy     string `json:"proxy"`
	Port      uint32 `json:"port"`
	Protocol  string `json:"protocol"` // HTTP or TCP
	MTLSMode  string `json:"mtlsMode"`
	Principal string `json:"principal,omitempty"` // the caller identity Envoy sees; "" when plaintext
	Path      string `json:"path,omitempty"`      // the normalised path RBAC matched
	// Decision is ALLOW or DENY (after a CUSTOM provider, if any, allowed).
	Decision string `json:"decision"`
	// Rule is the deciding rule; nil when no rule decided (no ALLOW policy applies,
	// or none matched, or the connection was refused).
	Rule   *RuleRef       `json:"rule,omitempty"`
	Reason string         `json:"reason"`
	Custom []CustomCall   `json:"custom,omitempty"`
	Audit  []RuleRef      `json:"audit,omitempty"`
	DryRun []DryRunResult `json:"dryRun,omitempty"`
	// Problems lists invalid policies that apply (each denies everything).
	Problems []string `json:"problems,omitempty"`
	// ConnectionRefused: Envoy closes the connection before any HTTP (plaintext to a
	// STRICT port).
	ConnectionRefused bool `json:"connectionRefused,omitempty"`
}

// Attributes are a connection and request as the proxy's filters see them, which the
// caller resolves (translate: the workload's port, mTLS mode and caller identity).
type Attributes struct {
	Principal string // the peer identity, a spiffe:// URI; "" on a plaintext connection
	DirectIP  netip.Addr
	RemoteIP  netip.Addr // the original client (X-Forwarded-For); DirectIP without one
	DestIP    netip.Addr
	DestPort  uint32
	SNI       string
	// HTTP only: Headers has lower-case names and the pseudo-headers :method, :path
	// and :authority; Path is :path as RBAC matches it (NormalizePath).
	Headers map[string]string
	Path    string
	// Claims is the payload of a JWT that jwt_authn verified; nil for no token.
	Claims map[string]any
}

// Evaluate decides a request against the policies of s, as the filters Envoy runs
// for the chain do (HTTP chains when http, else TCP), and fills in res the decision,
// the deciding rule, and the CUSTOM, AUDIT and dry-run outcomes beside it.
func (s *Set) Evaluate(res *CheckResult, http bool, a Attributes) {
	var pols []*authzPolicy
	if s != nil {
		pols = s.tcp
		if http {
			pols = s.http
		}
	}
	headers := a.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	var in *watch.Input
	if s != nil {
		in = s.in
	}
	evaluate(res, in, pols, http, &attrs{principal: a.Principal, directIP: a.DirectIP, remoteIP: a.RemoteIP, destIP: a.DestIP,
		destPort: a.DestPort, sni: a.SNI, headers: headers, path: a.Path, claims: spaceDelimited(a.Claims)})
}

// spaceDelimited copies claims with "scope" and "permission" strings split into
// lists, as jwt_authn puts them in metadata.
func spaceDelimited(claims map[string]any) map[string]any {
	if claims == nil {
		return nil
	}
	out := make(map[string]any, len(claims))
	for k, v := range claims {
		if s, ok := v.(string); ok && (k == "scope" || k == "permission") {
			var list []any
			for _, f := range strings.Fields(s) {
				list = append(list, f)
			}
			v = list
		}
		out[k] = v
	}
	return out
}

// entry is one RBAC policy entry of a filter: a rule, or an invalid policy's deny-all.
type entry struct {
	key  string
	pol  *authzPolicy
	rule *authzRule // nil: deny-all for an invalid policy
}

func (e entry) matches(a *attrs) bool {
	if e.rule == nil {
		return true
	}
	return slices.ContainsFunc(e.rule.perms, func(p *pred) bool { return p.eval(a) }) &&
		slices.ContainsFunc(e.rule.principals, func(p *pred) bool { return p.eval(a) })
}

func (e entry) ref() RuleRef { return RuleRef{Policy: e.pol.ref(), Rule: e.key} }

// entries lists the entries of one action's filter, enforced or shadow (dry-run),
// sorted by key as Envoy evaluates them.
func entries(pols []*authzPolicy, action authzAction, shadow bool) []entry {
	var out []entry
	for _, p := range pols {
		if p.dryRun != shadow {
			continue
		}
		if p.invalid != "" {
			if action == actionDeny {
				out = append(out, entry{key: invalidKey(p.meta.Namespace, p.meta.Name), pol: p})
			}
			continue
		}
		if p.action != action {
			continue
		}
		for i := range p.rules {
			out = append(out, entry{key: p.ruleKey(&p.rules[i]), pol: p, rule: &p.rules[i]})
		}
	}
	slices.SortFunc(out, func(a, b entry) int { return cmp.Compare(a.key, b.key) })
	return out
}

func policyRefs(pols []*authzPolicy) string {
	refs := make([]string, len(pols))
	for i, p := range pols {
		refs[i] = p.ref()
	}
	return strings.Join(refs, ", ")
}

func firstMatch(es []entry, a *attrs) (entry, bool) {
	for _, e := range es {
		if e.matches(a) {
			return e, true
		}
	}
	return entry{}, false
}

// evaluate runs Istio's order: CUSTOM, AUDIT, DENY, ALLOW; dry-run beside. CUSTOM
// rules whose provider is not called deny first, in the CUSTOM filter's place.
func evaluate(res *CheckResult, in *watch.Input, pols []*authzPolicy, http bool, a *attrs) {
	for _, p := range pols {
		if p.invalid != "" {
			res.Problems = append(res.Problems, p.ref()+": "+p.invalid)
		}
	}
	var groups []customGroup
	if in != nil {
		groups = customGroups(in, pols)
	}
	for _, g := range groups {
		if g.deny != "" {
			res.Problems = append(res.Problems, policyRefs(g.pols)+": "+g.deny)
		}
	}
	for _, g := range groups {
		if g.deny == "" {
			continue
		}
		if e, ok := firstMatch(entries(g.pols, actionCustom, false), a); ok {
			ref := e.ref()
			ref.Rule += badCustomSuffix
			res.Decision, res.Rule = "DENY", &ref
			res.Reason = "denied by CUSTOM policy " + ref.Policy + " without calling its provider (" + g.deny + ")"
			return
		}
	}
	for _, g := range groups {
		if g.deny != "" || (!http && !g.grpc) {
			continue
		}
		if e, ok := firstMatch(entries(g.pols, actionCustom, false), a); ok {
			res.Custom = append(res.Custom, CustomCall{Provider: g.provider, RuleRef: e.ref()})
		}
	}
	for _, e := range entries(pols, actionAudit, false) {
		if e.matches(a) {
			res.Audit = append(res.Audit, e.ref())
		}
	}
	if shadow := entries(pols, actionDeny, true); len(shadow) > 0 {
		r := DryRunResult{Action: "DENY", Decision: "ALLOW"}
		if e, ok := firstMatch(shadow, a); ok {
			ref := e.ref()
			r.Decision, r.Matched = "DENY", &ref
		}
		res.DryRun = append(res.DryRun, r)
	}
	if shadow := entries(pols, actionAllow, true); len(shadow) > 0 {
		r := DryRunResult{Action: "ALLOW", Decision: "DENY"}
		if e, ok := firstMatch(shadow, a); ok {
			ref := e.ref()
			r.Decision, r.Matched = "ALLOW", &ref
		}
		res.DryRun = append(res.DryRun, r)
	}
	if e, ok := firstMatch(entries(pols, actionDeny, false), a); ok {
		ref := e.ref()
		res.Decision, res.Rule = "DENY", &ref
		res.Reason = "denied by DENY policy " + ref.Policy
		if e.rule == nil {
			res.Reason = "denied because policy " + ref.Policy + " is invalid (fail closed): " + e.pol.invalid
		}
		return
	}
	if !hasAction(pols, actionAllow) {
		res.Decision, res.Reason = "ALLOW", "no ALLOW policy applies to this workload, so the request is allowed"
		return
	}
	if e, ok := firstMatch(entries(pols, actionAllow, false), a); ok {
		ref := e.ref()
		res.Decision, res.Rule = "ALLOW", &ref
		res.Reason = "allowed by ALLOW policy " + ref.Policy
		return
	}
	res.Decision, res.Reason = "DENY", "no ALLOW policy matched"
}
