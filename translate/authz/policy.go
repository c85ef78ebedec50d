package authz

import (
	"fmt"
	"strconv"

	security "istio.io/api/security/v1beta1"

	"github.com/wardenmesh/warden/watch"
)

const (
	dryRunAnnotation  = "istio.io/dry-run"
	extAuthzKeyPrefix = "istio-ext-authz-"
)

// authzAction is an AuthorizationPolicy action, in filter order.
type authzAction uint8

const (
	actionCustom authzAction = iota
	actionAudit
	actionDeny
	actionAllow
)

func (a authzAction) String() string {
	return [...]string{"CUSTOM", "AUDIT", "DENY", "ALLOW"}[a]
}

func actionOf(a security.AuthorizationPolicy_Action) authzAction {
	switch a {
	case security.AuthorizationPolicy_DENY:
		return actionDeny
	case security.AuthorizationPolicy_AUDIT:
		return actionAudit
	case security.AuthorizationPolicy_CUSTOM:
		return actionCustom
	}
	return actionAllow
}

// authzPolicy is one AuthorizationPolicy compiled for HTTP or for TCP chains.
type authzPolicy struct {
	meta     *watch.Meta
	action   authzAction
	provider string // CUSTOM only
	dryRun   bool
	rules    []authzRule
	// invalid, when set, says why the policy cannot be enforced as written. Its
	// workloads then deny every request (fail closed), whatever the action.
	invalid      string
	invalidField string
	// notes are warnings about the translation (e.g. HTTP-only fields on TCP).
	notes []fieldNote
}

// authzRule is one rule: it matches when one of perms and one of principals match.
type authzRule struct {
	key        string // ns[<ns>]-policy[<name>]-rule[<i>]
	index      int
	perms      []*pred
	principals []*pred
}

type fieldNote struct {
	field, message string
}

// policyKey is Istio's RBAC policy name of rule i.
func policyKey(ns, name string, i int) string {
	return "ns[" + ns + "]-policy[" + name + "]-rule[" + strconv.Itoa(i) + "]"
}

// invalidKey names the deny-all policy that stands in for an invalid policy.
func invalidKey(ns, name string) string {
	return "ns[" + ns + "]-policy[" + name + "]-rule[invalid]"
}

// Key is the policy name of rule r as it appears in Envoy.
func (p *authzPolicy) ruleKey(r *authzRule) string {
	if p.action == actionCustom {
		return extAuthzKeyPrefix + r.key
	}
	return r.key
}

func (p *authzPolicy) ref() string { return p.meta.Namespace + "/" + p.meta.Name }

// isDryRun reads the istio.io/dry-run annotation (strconv.ParseBool; unparsable is false).
func isDryRun(m *watch.Meta) bool {
	v, err := strconv.ParseBool(m.Annotations[dryRunAnnotation])
	return err == nil && v
}

// compilePolicy turns one AuthorizationPolicy into its rules for HTTP or TCP chains.
func compilePolicy(in *watch.Input, c *watch.Config[*security.AuthorizationPolicy], tcp bool) *authzPolicy {
	spec := c.Spec
	p := &authzPolicy{
		meta:     &c.Meta,
		action:   actionOf(spec.GetAction()),
		provider: spec.GetProvider().GetName(),
		dryRun:   isDryRun(&c.Meta),
	}
	if p.dryRun && p.action != actionAllow && p.action != actionDeny {
		p.notes = append(p.notes, fieldNote{"metadata.annotations[" + dryRunAnnotation + "]",
			"dry-run is supported for ALLOW and DENY only; this " + p.action.String() + " policy is enforced"})
		p.dryRun = false
	}
	if p.action == actionCustom {
		if msg := checkProvider(in, p.provider); msg != "" {
			p.invalid, p.invalidField = msg, "spec.provider.name"
			return p
		}
	}
	if len(spec.GetRules()) == 0 {
		// No rules: a policy that matches nothing, whatever the action (Istio's builder,
		// rbacPolicyMatchNever): an ALLOW policy allows nothing, a DENY, AUDIT or CUSTOM
		// policy does nothing (the decoder warns about those).
		p.rules = []authzRule{{key: policyKey(c.Namespace, c.Name, 0), perms: []*pred{neverPred()}, principals: []*pred{neverPred()}}}
		return p
	}
	rc := ruleCompiler{in: in, p: p, ns: c.Namespace, tcp: tcp}
	for i, r := range spec.GetRules() {
		if r == nil {
			continue
		}
		rule, keep, err := rc.rule(i, r)
		if err != nil {
			p.invalid, p.invalidField = err.msg, err.field
			p.rules = nil
			return p
		}
		if keep {
			p.rules = append(p.rules, rule)
		}
	}
	return p
}

// fieldErr is a problem with one field of a policy.
type fieldErr struct {
	field, msg string
}

func (e *fieldErr) Error() string { return e.field + ": " + e.msg }

func errorf(field, format string, args ...any) *fieldErr {
	return &fieldErr{field: field, msg: fmt.Sprintf(format, args...)}
}
