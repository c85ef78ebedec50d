package authz

import (
	"fmt"
	"strconv"

	security "istio.io/api/security/v1beta1"

	"github.com/wardenmesh/warden/watch"
)

const (
	dryRunAnnotation = "istio.io/dry-run"
	// extAuthzKeyPrefix starts the RBAC policy names of CUSTOM rules, which the
	// ext_authz filter's filter_enabled_metadata matches (Istio's extAuthzMatchPrefix).
	extAuthzKeyPrefix = "istio-ext-authz-"
	// badCustomSuffix ends the names of CUSTOM rules that deny because their provider
	// cannot be used (Istio's badCustomActionSuffix, builder/extauthz.go).
	badCustomSuffix = "-deny-due-to-bad-CUSTOM-action"
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
	// CUSTOM only: badProvider says why the provider cannot be used (unknown, or not
	// ext_authz); the policy's rules then deny what they match (RBAC DENY), as
	// Istio's getBadCustomDenyRules. grpcProvider: the provider speaks gRPC, so it
	// also checks TCP connections. keyPrefix starts the rule names.
	badProvider  string
	grpcProvider bool
	keyPrefix    string
	dryRun       bool
	rules        []authzRule
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

// ruleKey is the policy name of rule r as it appears in Envoy.
func (p *authzPolicy) ruleKey(r *authzRule) string {
	if p.action == actionCustom {
		return p.keyPrefix + r.key
	}
	return r.key
}

// customKeyPrefix starts the names of a CUSTOM provider's rules. With one provider
// per workload (Istio's default) it is "istio-ext-authz-", as the ext_authz filter
// of that workload matches. With PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS it
// names the provider, "istio-ext-authz-<provider>-" as Istio's policyName, so that
// each provider's ext_authz runs only for its own rules (customMatchPrefix).
func customKeyPrefix(in *watch.Input, provider string) string {
	if in.MultipleCustomAuthzProviders {
		return extAuthzKeyPrefix + provider + "-"
	}
	return extAuthzKeyPrefix
}

// customMatchPrefix is what a provider's ext_authz filter requires of the matched
// CUSTOM rule's name. Per provider it ends in "ns[", the start of every rule key,
// so that provider "a" does not also match the rules of provider "a-b" (Istio's
// generateFilterMatcherForProvider stops at the provider name).
func customMatchPrefix(in *watch.Input, provider string) string {
	if in.MultipleCustomAuthzProviders {
		return customKeyPrefix(in, provider) + "ns["
	}
	return "istio-ext-authz"
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
		p.keyPrefix = customKeyPrefix(in, p.provider)
		ep, msg := findProvider(in, p.provider)
		p.badProvider = msg
		p.grpcProvider = ep != nil && ep.grpc != nil
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
