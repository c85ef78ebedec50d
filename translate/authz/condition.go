package authz

import (
	"fmt"
	"strings"

	security "istio.io/api/security/v1beta1"
)

// condition compiles one `when` entry; principal says on which side of the RBAC
// policy it goes (principals or permissions).
func (rc *ruleCompiler) condition(name string, c *security.Condition) (principal bool, pt part, err *fieldErr) {
	key := c.GetKey()
	mk, principal, httpOnly, authn, ferr := conditionKey(key)
	if ferr != nil {
		return false, part{}, errorf(name+".key", "%v", ferr)
	}
	if mk == nil {
		switch key {
		case "source.serviceAccount":
			mk = rc.serviceAccount
		case "source.trustDomain":
			mk = rc.trustDomain
		default:
			mk = rc.principal
		}
	}
	if rc.p.action == actionCustom && authn {
		return false, part{}, errorf(name+".key", "%s is not allowed in a CUSTOM policy: ext_authz runs before authentication", key)
	}
	if len(c.GetValues()) == 0 && len(c.GetNotValues()) == 0 {
		return false, part{}, errorf(name, "one of values or notValues must be set")
	}
	var parts []part
	field := func(suffix string, values []string, not bool) *fieldErr {
		return fieldOf(&parts, name+"."+suffix, key, values, not, httpOnly, mk)
	}
	if err := field("values", c.GetValues(), false); err != nil {
		return false, part{}, err
	}
	if err := field("notValues", c.GetNotValues(), true); err != nil {
		return false, part{}, err
	}
	if key == "source.principal" {
		rc.literalStars(name+".values", c.GetValues())
		rc.literalStars(name+".notValues", c.GetNotValues())
	}
	kids := make([]*pred, len(parts))
	for i, p := range parts {
		kids[i] = p.pred
	}
	p := kids[0]
	if len(kids) > 1 {
		p = andPred(kids...)
	}
	return principal, part{field: name, pred: p, httpOnly: httpOnly}, nil
}

// fieldOf is field with the condition key in error messages.
func fieldOf(parts *[]part, name, key string, values []string, not, httpOnly bool, mk valueFunc) *fieldErr {
	if err := field(parts, name, values, not, httpOnly, mk); err != nil {
		err.msg = key + ": " + err.msg
		return err
	}
	return nil
}

// conditionKey maps a `when` key to how its values compile. A nil valueFunc means
// the principal (service account, trust domain) matcher of the rule compiler. authn marks keys
// that depend on authentication (forbidden in CUSTOM policies).
func conditionKey(key string) (mk valueFunc, principal, httpOnly, authn bool, err error) {
	switch key {
	case "source.ip":
		return cidrValue(attrDirectRemoteIP), true, false, false, nil
	case "remote.ip":
		return cidrValue(attrRemoteIP), true, false, false, nil
	case "source.namespace":
		return namespaceValue, true, false, true, nil
	case "source.principal", "source.serviceAccount":
		return nil, true, false, true, nil
	case "source.trustDomain":
		return nil, true, false, true, nil
	case "request.auth.principal":
		return requestPrincipal, true, true, true, nil
	case "request.auth.audiences":
		return claimValue([]string{"aud"}, listOrItem), true, true, true, nil
	case "request.auth.presenter":
		return claimValue([]string{"azp"}, listOrItem), true, true, true, nil
	case "destination.ip":
		return cidrValue(attrDestIP), false, false, false, nil
	case "destination.port":
		return portValue, false, false, false, nil
	case "connection.sni":
		return sniValue, false, false, false, nil
	}
	if rest, ok := strings.CutPrefix(key, "request.headers"); ok {
		names, err := brackets(rest)
		if err != nil || len(names) != 1 {
			return nil, false, false, false, fmt.Errorf("%q: want request.headers[<name>]", key)
		}
		return headerValue(names[0]), true, true, false, nil
	}
	if rest, ok := strings.CutPrefix(key, "request.auth.claims"); ok {
		path, err := brackets(rest)
		if err != nil || len(path) == 0 {
			return nil, false, false, false, fmt.Errorf("%q: want request.auth.claims[<name>]...", key)
		}
		return claimValue(path, listOrItem), true, true, true, nil
	}
	if rest, ok := strings.CutPrefix(key, "experimental.envoy.filters."); ok {
		i := strings.Index(rest, "[")
		path, err := brackets(rest[max(i, 0):])
		if i <= 0 || err != nil || len(path) != 1 {
			return nil, false, false, false, fmt.Errorf("%q: want experimental.envoy.filters.<filter>[<key>]", key)
		}
		return filterMetadataValue("envoy.filters."+rest[:i], path), false, false, false, nil
	}
	return nil, false, false, false, fmt.Errorf("unknown condition key %q", key)
}

// brackets parses "[a][b]..." into its non-empty names.
func brackets(s string) ([]string, error) {
	var out []string
	for s != "" {
		if s[0] != '[' {
			return nil, fmt.Errorf("unexpected %q", s)
		}
		end := strings.IndexByte(s, ']')
		if end <= 1 {
			return nil, fmt.Errorf("empty or unterminated [")
		}
		out = append(out, s[1:end])
		s = s[end+1:]
	}
	return out, nil
}

func claimValue(path []string, list listMode) valueFunc {
	return func(v string) ([]*pred, error) {
		return []*pred{jwtClaim(path, istioMatch(v), list)}, nil
	}
}

func sniValue(v string) ([]*pred, error) {
	return []*pred{leafPred(&leaf{attr: attrSNI, m: istioMatch(v)})}, nil
}

// filterMetadataValue matches another filter's dynamic metadata; "[v]" matches a list
// containing v.
func filterMetadataValue(filter string, path []string) valueFunc {
	return func(v string) ([]*pred, error) {
		l := &leaf{attr: attrMetadata, name: filter, path: path, m: istioMatch(v)}
		if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") && len(v) > 2 {
			l.m, l.list = istioMatch(v[1:len(v)-1]), listOnly
		}
		return []*pred{leafPred(l)}, nil
	}
}
