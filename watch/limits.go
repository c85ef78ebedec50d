package watch

import (
	"fmt"
	"regexp/syntax"

	"google.golang.org/protobuf/reflect/protoreflect"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
)

// Limits on what one object may ask of translation. Translation runs per proxy on the
// push loop, so an object beyond these would delay every proxy's configuration; the
// decoder rejects it instead, with a diagnostic, and the last good version (or the
// fail-closed rule for a new object) stays in force. Istio has no such limits; these
// sit far above what a hand-written or generated policy needs (the largest policy of
// the Online Boutique and Istio in Action samples has 4 rules and 6 values).
const (
	// MaxAuthorizationRules is the rules of one AuthorizationPolicy.
	MaxAuthorizationRules = 1000
	// MaxAuthorizationValues is the values of one AuthorizationPolicy: every entry of
	// every list of its sources, operations and conditions, not-lists included.
	MaxAuthorizationValues = 20000
	// MaxJWTRules is the jwtRules of one RequestAuthentication.
	MaxJWTRules = 100
	// MaxRegexBytes is the length of one regular expression (VirtualService regex
	// matches); it must also parse as RE2, the syntax Envoy's safe_regex uses.
	MaxRegexBytes = 4096
)

func limitAuthorizationPolicy(ap *security.AuthorizationPolicy) []fieldError {
	if n := len(ap.GetRules()); n > MaxAuthorizationRules {
		return []fieldError{{"spec.rules", fmt.Sprintf("%d rules exceed the limit of %d per policy; split the policy", n, MaxAuthorizationRules)}}
	}
	values := 0
	for _, r := range ap.GetRules() {
		for _, f := range r.GetFrom() {
			s := f.GetSource()
			values += len(s.GetPrincipals()) + len(s.GetNotPrincipals()) + len(s.GetRequestPrincipals()) +
				len(s.GetNotRequestPrincipals()) + len(s.GetNamespaces()) + len(s.GetNotNamespaces()) +
				len(s.GetServiceAccounts()) + len(s.GetNotServiceAccounts()) + len(s.GetTrustDomains()) +
				len(s.GetNotTrustDomains()) + len(s.GetIpBlocks()) + len(s.GetNotIpBlocks()) +
				len(s.GetRemoteIpBlocks()) + len(s.GetNotRemoteIpBlocks())
		}
		for _, t := range r.GetTo() {
			o := t.GetOperation()
			values += len(o.GetHosts()) + len(o.GetNotHosts()) + len(o.GetPorts()) + len(o.GetNotPorts()) +
				len(o.GetMethods()) + len(o.GetNotMethods()) + len(o.GetPaths()) + len(o.GetNotPaths())
		}
		for _, c := range r.GetWhen() {
			values += len(c.GetValues()) + len(c.GetNotValues())
		}
	}
	if values > MaxAuthorizationValues {
		return []fieldError{{"spec.rules", fmt.Sprintf("%d values exceed the limit of %d per policy; split the policy", values, MaxAuthorizationValues)}}
	}
	return nil
}

func limitRequestAuthentication(ra *security.RequestAuthentication) []fieldError {
	if n := len(ra.GetJwtRules()); n > MaxJWTRules {
		return []fieldError{{"spec.jwtRules", fmt.Sprintf("%d rules exceed the limit of %d per RequestAuthentication", n, MaxJWTRules)}}
	}
	return nil
}

// validateRegexes checks every StringMatch regex of a VirtualService: at most
// MaxRegexBytes long and valid RE2 (Envoy would NACK the route configuration of every
// proxy that gets it otherwise).
func validateRegexes(vs *networking.VirtualService) []fieldError {
	var errs []fieldError
	walkStringMatches(vs.ProtoReflect(), "spec", func(field, re string) {
		switch {
		case len(re) > MaxRegexBytes:
			errs = append(errs, fieldError{field, fmt.Sprintf("regex of %d bytes exceeds the limit of %d", len(re), MaxRegexBytes)})
		default:
			if _, err := syntax.Parse(re, syntax.Perl); err != nil {
				errs = append(errs, fieldError{field, fmt.Sprintf("invalid RE2 regex: %v", err)})
			}
		}
	})
	return errs
}

var stringMatchName = (&networking.StringMatch{}).ProtoReflect().Descriptor().FullName()

// walkStringMatches calls fn with the path and expression of every StringMatch regex
// under m (field paths in the JSON names users write: http[0].match[1].uri.regex).
func walkStringMatches(m protoreflect.Message, path string, fn func(field, re string)) {
	if m.Descriptor().FullName() == stringMatchName {
		if sm, ok := m.Interface().(*networking.StringMatch); ok && sm.GetRegex() != "" {
			fn(path+".regex", sm.GetRegex())
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		name := path + "." + fd.JSONName()
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				walkStringMatches(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", name, i), fn)
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					walkStringMatches(mv.Message(), name+"["+k.String()+"]", fn)
				}
				return true
			})
		default:
			walkStringMatches(v.Message(), name, fn)
		}
		return true
	})
}
