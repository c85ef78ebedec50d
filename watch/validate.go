package watch

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
)

// validateSpec repeats the checks of Istio's validating webhook that matter for the
// kinds Warden serves. tree is the spec as plain JSON, for checks that protobuf cannot
// see (an empty map that was set). Fields are reported under "spec".
func validateSpec(spec any, tree any) []fieldError {
	raw, _ := tree.(map[string]any)
	switch s := spec.(type) {
	case *security.PeerAuthentication:
		return validatePeerAuthentication(s, raw)
	case *security.RequestAuthentication:
		return append(limitRequestAuthentication(s), validateRequestAuthentication(s)...)
	case *security.AuthorizationPolicy:
		if errs := limitAuthorizationPolicy(s); errs != nil {
			return errs // the policy is not walked further
		}
		return validateAuthorizationPolicy(s)
	case *networking.VirtualService:
		return validateRegexes(s)
	case *networking.DestinationRule:
		if s.GetHost() == "" {
			return []fieldError{{"spec.host", "host is required"}}
		}
	case *networking.ServiceEntry:
		return validateServiceEntry(s)
	case *networking.Gateway:
		if len(s.GetServers()) == 0 {
			return []fieldError{{"spec.servers", "a gateway needs at least one server"}}
		}
	}
	return nil
}

func validatePeerAuthentication(pa *security.PeerAuthentication, raw map[string]any) []fieldError {
	errs := validateSelector(pa.GetSelector())
	if v, ok := raw["portLevelMtls"]; ok && v != nil && len(pa.GetPortLevelMtls()) == 0 {
		errs = append(errs, fieldError{"spec.portLevelMtls", "must not be empty when set"})
	}
	if len(pa.GetPortLevelMtls()) > 0 && len(pa.GetSelector().GetMatchLabels()) == 0 {
		errs = append(errs, fieldError{"spec.portLevelMtls", "portLevelMtls requires a non-empty selector (namespace- and mesh-wide policies cannot set port-level mTLS)"})
	}
	for _, port := range sortedPorts(pa.GetPortLevelMtls()) {
		if port == 0 || port > 65535 {
			errs = append(errs, fieldError{fmt.Sprintf("spec.portLevelMtls[%d]", port), "port must be in 1..65535"})
		}
	}
	return errs
}

func validateRequestAuthentication(ra *security.RequestAuthentication) []fieldError {
	errs := validateSelector(ra.GetSelector())
	if ra.GetSelector() != nil && len(ra.GetTargetRefs())+boolInt(ra.GetTargetRef() != nil) > 0 {
		errs = append(errs, fieldError{"spec", "only one of selector or targetRefs can be set"})
	}
	for i, rule := range ra.GetJwtRules() {
		if rule.GetIssuer() == "" {
			errs = append(errs, fieldError{fmt.Sprintf("spec.jwtRules[%d].issuer", i), "issuer is required"})
		}
		if rule.GetJwks() != "" && rule.GetJwksUri() != "" {
			errs = append(errs, fieldError{fmt.Sprintf("spec.jwtRules[%d]", i), "only one of jwks or jwksUri can be set"})
		}
	}
	return errs
}

func validateAuthorizationPolicy(ap *security.AuthorizationPolicy) []fieldError {
	errs := validateSelector(ap.GetSelector())
	if ap.GetSelector() != nil && len(ap.GetTargetRefs())+boolInt(ap.GetTargetRef() != nil) > 0 {
		errs = append(errs, fieldError{"spec", "only one of selector or targetRefs can be set"})
	}
	action := ap.GetAction()
	switch {
	case action == security.AuthorizationPolicy_CUSTOM && ap.GetProvider().GetName() == "":
		errs = append(errs, fieldError{"spec.provider.name", "action CUSTOM requires a provider name"})
	case action != security.AuthorizationPolicy_CUSTOM && ap.GetProvider() != nil:
		errs = append(errs, fieldError{"spec.provider", "provider is only allowed with action CUSTOM"})
	}
	for i, rule := range ap.GetRules() {
		errs = append(errs, validateRule(fmt.Sprintf("spec.rules[%d]", i), rule)...)
	}
	return errs
}

// validateRule rejects the empty shapes Istio's webhook rejects (pkg/config/validation,
// ValidateAuthorizationPolicy): a null rule, and a from or to entry whose source or
// operation is null or sets no field. Istio's builder would read them as "any source" or
// "any operation"; the webhook says the author meant something else.
func validateRule(field string, r *security.Rule) []fieldError {
	if r == nil {
		return []fieldError{{field, "a rule must not be null (write {} for a rule that matches every request)"}}
	}
	var errs []fieldError
	for j, f := range r.GetFrom() {
		name := fmt.Sprintf("%s.from[%d].source", field, j)
		switch {
		case f.GetSource() == nil:
			errs = append(errs, fieldError{name, "must not be null: leave out from to match every source"})
		case proto.Size(f.GetSource()) == 0:
			errs = append(errs, fieldError{name, "must set at least one field: leave out from to match every source"})
		}
	}
	for j, t := range r.GetTo() {
		name := fmt.Sprintf("%s.to[%d].operation", field, j)
		switch {
		case t.GetOperation() == nil:
			errs = append(errs, fieldError{name, "must not be null: leave out to to match every operation"})
		case proto.Size(t.GetOperation()) == 0:
			errs = append(errs, fieldError{name, "must set at least one field: leave out to to match every operation"})
		}
	}
	return errs
}

// warnSpec lists what Istio's webhook rejects but its builder still serves with a
// meaning Warden follows, so the object is served, with a warning.
func warnSpec(spec any) []fieldError {
	ap, ok := spec.(*security.AuthorizationPolicy)
	if !ok || len(ap.GetRules()) > 0 || ap.GetAction() == security.AuthorizationPolicy_ALLOW {
		return nil
	}
	// Istio's reference for rules: "If not set, the match will never occur"; its builder
	// renders such a policy as one never-matching rule (builder.go, rbacPolicyMatchNever).
	return []fieldError{{"spec.rules", fmt.Sprintf("action %s without rules never matches, so this policy does nothing "+
		"(Istio's webhook refuses it as meaningless); write rules: [{}] to match every request", ap.GetAction())}}
}

// validateSelector rejects empty label keys and wildcards, as Istio does.
func validateSelector(sel *typev1beta1.WorkloadSelector) []fieldError {
	var errs []fieldError
	labels := sel.GetMatchLabels()
	for _, k := range sortedKeys(labels) {
		field := "spec.selector.matchLabels[" + k + "]"
		switch {
		case k == "":
			errs = append(errs, fieldError{field, "label key must not be empty"})
		case strings.Contains(k, "*"):
			errs = append(errs, fieldError{field, "wildcard not allowed in label key"})
		case strings.Contains(labels[k], "*"):
			errs = append(errs, fieldError{field, "wildcard not allowed in label value"})
		}
	}
	return errs
}

func sortedPorts[V any](m map[uint32]V) []uint32 {
	return slices.Sorted(maps.Keys(m))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
