package authz

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/wardenmesh/warden/internal/protoany"

	uritemplate "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	security "istio.io/api/security/v1beta1"

	"github.com/wardenmesh/warden/translate/internal/shared"
	"github.com/wardenmesh/warden/watch"
)

// ruleCompiler compiles the rules of one policy.
type ruleCompiler struct {
	in  *watch.Input
	p   *authzPolicy
	ns  string
	tcp bool
}

// part is one compiled field (or condition) of a rule, ANDed with the others.
type part struct {
	field    string
	pred     *pred
	httpOnly bool
}

// valueFunc compiles one value of a field into the predicates it stands for (ORed).
type valueFunc func(v string) ([]*pred, error)

// field compiles values (ORed) into one part; not negates the OR.
// fieldSpec is one field of a source or operation: its values, whether it is a not-
// field, whether it exists only for HTTP, and how a value becomes predicates.
type fieldSpec struct {
	field    string
	values   []string
	not      bool
	httpOnly bool
	mk       valueFunc
}

// fields compiles the fields of one source or operation named name.
func fields(name string, specs []fieldSpec) ([]part, *fieldErr) {
	var parts []part
	for _, f := range specs {
		if err := field(&parts, name+"."+f.field, f.values, f.not, f.httpOnly, f.mk); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

func field(parts *[]part, name string, values []string, not, httpOnly bool, mk valueFunc) *fieldErr {
	if len(values) == 0 {
		return nil
	}
	var kids []*pred
	for i, v := range values {
		if v == "" {
			return errorf(fmt.Sprintf("%s[%d]", name, i), "empty value")
		}
		ps, err := mk(v)
		if err != nil {
			return errorf(fmt.Sprintf("%s[%d]", name, i), "%v", err)
		}
		kids = append(kids, ps...)
	}
	p := orPred(mergeExactPrincipals(kids)...)
	if not {
		p = notPred(p)
	}
	*parts = append(*parts, part{field: name, pred: p, httpOnly: httpOnly})
	return nil
}

// mergeThreshold is the number of exact principal values from which they are merged
// into alternations. Envoy evaluates every `authenticated` matcher separately
// (reading the peer certificate's SANs each time): 1,000 of them measured 1.06 ms p50
// per request against 0.21 ms for one alternation that RE2 matches in linear time
// (make bench). Envoy rejects regexes whose RE2 program exceeds the runtime limit
// re2.max_program_size.error_level; wardend's bootstrap raises it to 32768 as
// Istio's does, and maxAlternation keeps each expression well below that.
const (
	mergeThreshold = 8
	maxAlternation = 40000 // characters of one merged expression (about 14k program size)
)

// mergeExactPrincipals replaces many exact principal matchers by regular expressions
// matching any of them; other predicates are kept after them.
func mergeExactPrincipals(kids []*pred) []*pred {
	isExact := func(k *pred) bool {
		return k.op == opLeaf && k.leaf.attr == attrPrincipal && k.leaf.m.kind == matchExact
	}
	var exact []string
	for _, k := range kids {
		if isExact(k) {
			exact = append(exact, k.leaf.m.value)
		}
	}
	if len(exact) < mergeThreshold {
		return kids
	}
	slices.Sort(exact)
	exact = slices.Compact(exact)
	var out []*pred
	var chunk []string
	size := 0
	flush := func() {
		if len(chunk) > 0 {
			out = append(out, leafPred(&leaf{attr: attrPrincipal, m: regexMatch(strings.Join(chunk, "|"))}))
			chunk, size = nil, 0
		}
	}
	for _, v := range exact {
		q := regexp.QuoteMeta(v)
		if size+len(q)+1 > maxAlternation {
			flush()
		}
		chunk, size = append(chunk, q), size+len(q)+1
	}
	flush()
	for _, k := range kids {
		if !isExact(k) {
			out = append(out, k)
		}
	}
	return out
}

// rule compiles rule i; keep is false when the rule is dropped (HTTP-only fields of
// an ALLOW or CUSTOM rule on a TCP chain).
func (rc *ruleCompiler) rule(i int, r *security.Rule) (authzRule, bool, *fieldErr) {
	base := fmt.Sprintf("spec.rules[%d]", i)
	var froms, tos [][]part
	for j, f := range r.GetFrom() {
		name := fmt.Sprintf("%s.from[%d].source", base, j)
		parts, err := rc.source(name, f.GetSource())
		if err != nil {
			return authzRule{}, false, err
		}
		froms = append(froms, parts)
	}
	for j, t := range r.GetTo() {
		name := fmt.Sprintf("%s.to[%d].operation", base, j)
		parts, err := rc.operation(name, t.GetOperation())
		if err != nil {
			return authzRule{}, false, err
		}
		tos = append(tos, parts)
	}
	var condPrincipals, condPerms []part
	for k, c := range r.GetWhen() {
		principal, pt, err := rc.condition(fmt.Sprintf("%s.when[%d]", base, k), c)
		if err != nil {
			return authzRule{}, false, err
		}
		if principal {
			condPrincipals = append(condPrincipals, pt)
		} else {
			condPerms = append(condPerms, pt)
		}
	}

	keep := true
	// A valid HTTP provider never checks TCP connections: its TCP rules are unused,
	// so there is nothing to say about them.
	quiet := rc.p.action == actionCustom && rc.p.badProvider == "" && !rc.p.grpcProvider
	filter := func(parts []part) []part {
		if !rc.tcp {
			return parts
		}
		out := parts[:0:0]
		for _, pt := range parts {
			if !pt.httpOnly {
				out = append(out, pt)
				continue
			}
			// Istio builds ALLOW rules for TCP with RBAC_ALLOW (an HTTP-only field
			// drops the rule) and DENY, AUDIT and CUSTOM rules with RBAC_DENY (the
			// field is dropped, widening the rule): builder.go build(customPolicies,
			// RBAC_DENY), golden tcp/custom-both-http-tcp-out1.yaml.
			if rc.p.action == actionAllow {
				keep = false
				rc.p.notes = append(rc.p.notes, fieldNote{pt.field, fmt.Sprintf(
					"HTTP-only field on a TCP port: rule %d of this %s policy is dropped for TCP traffic, as in Istio (it can never match there)", i, rc.p.action)})
			} else if !quiet {
				rc.p.notes = append(rc.p.notes, fieldNote{pt.field, fmt.Sprintf(
					"HTTP-only field on a TCP port: the field is ignored there, so rule %d of this %s policy matches more TCP traffic, as in Istio (a rule left with no fields matches all TCP traffic)", i, rc.p.action)})
			}
		}
		return out
	}
	condPrincipals, condPerms = filter(condPrincipals), filter(condPerms)
	rule := authzRule{key: policyKey(rc.ns, rc.p.meta.Name, i), index: i}
	rule.principals = combine(froms, condPrincipals, filter)
	rule.perms = combine(tos, condPerms, filter)
	return rule, keep, nil
}

// combine builds the ORed list: one AND per source (or operation) with the
// conditions of its side appended; a single AND of the conditions when the rule has
// no sources (operations). An empty AND matches everything.
func combine(groups [][]part, conds []part, filter func([]part) []part) []*pred {
	if len(groups) == 0 {
		groups = [][]part{nil}
	}
	out := make([]*pred, 0, len(groups))
	for _, g := range groups {
		var kids []*pred
		for _, pt := range append(filter(g), conds...) {
			kids = append(kids, pt.pred)
		}
		if len(kids) == 0 {
			kids = []*pred{anyPred()}
		}
		out = append(out, andPred(kids...))
	}
	return out
}

func (rc *ruleCompiler) source(name string, s *security.Source) ([]part, *fieldErr) {
	if s == nil {
		return nil, errorf(name, "source must be set")
	}
	parts, err := fields(name, []fieldSpec{
		{"principals", s.GetPrincipals(), false, false, rc.principal},
		{"notPrincipals", s.GetNotPrincipals(), true, false, rc.principal},
		{"requestPrincipals", s.GetRequestPrincipals(), false, true, requestPrincipal},
		{"notRequestPrincipals", s.GetNotRequestPrincipals(), true, true, requestPrincipal},
		{"namespaces", s.GetNamespaces(), false, false, namespaceValue},
		{"notNamespaces", s.GetNotNamespaces(), true, false, namespaceValue},
		{"serviceAccounts", s.GetServiceAccounts(), false, false, rc.serviceAccount},
		{"notServiceAccounts", s.GetNotServiceAccounts(), true, false, rc.serviceAccount},
		{"trustDomains", s.GetTrustDomains(), false, false, rc.trustDomain},
		{"notTrustDomains", s.GetNotTrustDomains(), true, false, rc.trustDomain},
		{"ipBlocks", s.GetIpBlocks(), false, false, cidrValue(attrDirectRemoteIP)},
		{"notIpBlocks", s.GetNotIpBlocks(), true, false, cidrValue(attrDirectRemoteIP)},
		{"remoteIpBlocks", s.GetRemoteIpBlocks(), false, false, cidrValue(attrRemoteIP)},
		{"notRemoteIpBlocks", s.GetNotRemoteIpBlocks(), true, false, cidrValue(attrRemoteIP)},
	})
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, errorf(name, "source must set at least one field")
	}
	rc.literalStars(name+".principals", s.GetPrincipals())
	rc.literalStars(name+".notPrincipals", s.GetNotPrincipals())
	if rc.p.action == actionCustom {
		for _, pt := range parts {
			if !strings.Contains(strings.ToLower(pt.field), "ipblocks") {
				return nil, errorf(pt.field, "not allowed in a CUSTOM policy: ext_authz runs before authentication")
			}
		}
	}
	return parts, nil
}

func (rc *ruleCompiler) operation(name string, o *security.Operation) ([]part, *fieldErr) {
	if o == nil {
		return nil, errorf(name, "operation must be set")
	}
	parts, err := fields(name, []fieldSpec{
		{"hosts", o.GetHosts(), false, true, hostValue},
		{"notHosts", o.GetNotHosts(), true, true, hostValue},
		{"ports", o.GetPorts(), false, false, portValue},
		{"notPorts", o.GetNotPorts(), true, false, portValue},
		{"methods", o.GetMethods(), false, true, headerValue(":method")},
		{"notMethods", o.GetNotMethods(), true, true, headerValue(":method")},
		{"paths", o.GetPaths(), false, true, pathValue},
		{"notPaths", o.GetNotPaths(), true, true, pathValue},
	})
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, errorf(name, "operation must set at least one field")
	}
	return parts, nil
}

// literalStars warns about principal values with a "*" that is not a wildcard. Istio's
// webhook accepts them (pkg/config/validation ValidateAuthorizationPolicy only runs
// security.CheckEmptyValues on principals, and ValidateAttribute nothing more for
// source.principal) and its builder matches a "*" only as the whole value, a prefix or
// a suffix (pilot/pkg/security/authz/matcher/string.go StringMatcherWithPrefix); any
// other "*" is part of an exact (or prefix, suffix) match. Warden serves the same
// matcher and says so: such a value matches no workload identity, since no Kubernetes
// namespace or service account name contains a "*".
func (rc *ruleCompiler) literalStars(field string, values []string) {
	for i, v := range values {
		if !literalStar(v) {
			continue
		}
		rc.p.notes = append(rc.p.notes, fieldNote{fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf(
			"%q: a \"*\" inside a principal is not a wildcard (only a leading or trailing one, or \"*\" alone, is); "+
				"it is matched literally, as in Istio, so this value matches no workload identity", v)})
	}
}

// literalStar reports whether istioMatch leaves a "*" of v in the value it matches.
func literalStar(v string) bool {
	switch {
	case v == "*":
		return false
	case strings.HasPrefix(v, "*"):
		v = v[1:]
	case strings.HasSuffix(v, "*"):
		v = v[:len(v)-1]
	}
	return strings.Contains(v, "*")
}

// principal: the peer's SPIFFE ID, with the trust domain expanded to the mesh trust
// domain and its aliases as Istio does.
func (rc *ruleCompiler) principal(v string) ([]*pred, error) {
	var out []*pred
	for _, p := range rc.withAliases(v) {
		out = append(out, leafPred(&leaf{attr: attrPrincipal, m: spiffeMatch(p)}))
	}
	return out, nil
}

// withAliases rewrites "<td>/ns/..." for each trust domain of the mesh when <td> is
// one of them or "cluster.local" (which stands for the local trust domain), as
// Istio's trustdomain.Bundle ReplaceTrustDomainAliases.
func (rc *ruleCompiler) withAliases(v string) []string {
	i := strings.Index(v, "/ns/")
	if strings.HasPrefix(v, "*") || i <= 0 {
		return []string{v}
	}
	tds, ok := rc.aliasesOf(v[:i], true)
	if !ok {
		return []string{v}
	}
	out := make([]string, 0, len(tds))
	for _, t := range tds {
		out = append(out, t+v[i:])
	}
	return out
}

// aliasesOf is the one place trust-domain aliases are expanded, for principals and
// for trust-domain values: when td is the mesh trust domain or one of its
// trustDomainAliases (or, with clusterLocal, "cluster.local", which principals use
// for the local trust domain), it returns the trust domain and every alias, without
// duplicates; else ok is false and td stands alone. Istio expands trustDomains,
// notTrustDomains and source.trustDomain with Bundle.ExpandTrustDomainAliases (exact
// members of the bundle only) and principals with ReplaceTrustDomainAliases
// (pilot/pkg/security/trustdomain/bundle.go, model.go MigrateTrustDomain).
func (rc *ruleCompiler) aliasesOf(td string, clusterLocal bool) ([]string, bool) {
	tds := append([]string{rc.in.TrustDomain}, rc.in.Mesh.GetTrustDomainAliases()...)
	if !slices.Contains(tds, td) && !(clusterLocal && td == watch.DefaultTrustDomain) {
		return nil, false
	}
	var out []string
	for _, t := range tds {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, true
}

// spiffeMatch matches a URI SAN for an Istio principal value.
func spiffeMatch(v string) strMatch {
	m := istioMatch(v)
	switch m.kind {
	case matchPresent:
		return regexMatch(".+")
	case matchSuffix:
		return regexMatch("spiffe://.*" + regexp.QuoteMeta(m.value))
	}
	m.value = "spiffe://" + m.value
	return m
}

// wildcardRegex quotes v with each "*" standing for any text.
func wildcardRegex(v string) string {
	parts := strings.Split(v, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return strings.Join(parts, ".*")
}

func namespaceValue(v string) ([]*pred, error) {
	return []*pred{leafPred(&leaf{attr: attrPrincipal, m: regexMatch(".*/ns/" + wildcardRegex(v) + "/.*")})}, nil
}

// serviceAccount is "<ns>/<sa>" or "<sa>" (the policy's namespace).
func (rc *ruleCompiler) serviceAccount(v string) ([]*pred, error) {
	ns, sa, ok := strings.Cut(v, "/")
	if !ok {
		ns, sa = rc.ns, v
	}
	if ns == "" || sa == "" || strings.ContainsAny(v, "*") || strings.Contains(sa, "/") {
		return nil, fmt.Errorf("service account %q must be <namespace>/<name> or <name>, without wildcards", v)
	}
	expr := "spiffe://.+/ns/" + regexp.QuoteMeta(ns) + "/(.+/|)sa/" + regexp.QuoteMeta(sa) + "(/.+)?"
	return []*pred{leafPred(&leaf{attr: attrPrincipal, m: regexMatch(expr)})}, nil
}

// trustDomain matches the trust domain of the peer's SPIFFE ID; the mesh trust
// domain or an alias stands for all of them (aliasesOf).
func (rc *ruleCompiler) trustDomain(v string) ([]*pred, error) {
	tds, ok := rc.aliasesOf(v, false)
	if !ok {
		return trustDomainValue(v)
	}
	var out []*pred
	for _, td := range tds {
		ps, err := trustDomainValue(td)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

func trustDomainValue(v string) ([]*pred, error) {
	var m strMatch
	switch {
	case v == "*":
		m = prefixStr("spiffe://")
	case strings.Contains(v, "*"):
		if strings.Count(v, "*") > 1 || !(strings.HasPrefix(v, "*") || strings.HasSuffix(v, "*")) {
			return nil, fmt.Errorf("trust domain %q: only one leading or trailing * is allowed", v)
		}
		m = regexMatch("spiffe://" + strings.ReplaceAll(wildcardRegex(v), ".*", "[^/]*") + "/.*")
	default:
		m = prefixStr("spiffe://" + v + "/")
	}
	return []*pred{leafPred(&leaf{attr: attrPrincipal, m: m})}, nil
}

// requestPrincipal matches the JWT's iss and sub, split at the last "/" (the issuer
// may be a URL), as Istio's requestPrincipalGenerator (authz/model/generator.go): a
// "*" counts only at the start or the end of the whole value. A leading "*" is a
// suffix of iss (any iss for "*") with sub exact; a trailing "*" is a prefix of sub
// (any sub for "*") with iss exact; without "/" the value is iss (suffix or prefix)
// and sub is anything, or iss exact and sub empty. A "*" elsewhere is literal.
func requestPrincipal(v string) ([]*pred, error) {
	i := strings.LastIndex(v, "/")
	found := i >= 0
	iss, sub := v, ""
	if found {
		iss, sub = v[:i], v[i+1:]
	}
	present := strMatch{kind: matchPresent}
	var mIss, mSub strMatch
	switch {
	case v == "*":
		mIss, mSub = present, present
	case strings.HasPrefix(v, "*") && found:
		mIss, mSub = strMatch{kind: matchSuffix, value: iss[1:]}, exactStr(sub)
		if iss == "*" {
			mIss = present
		}
	case strings.HasPrefix(v, "*"):
		mIss, mSub = present, strMatch{kind: matchSuffix, value: v[1:]}
	case strings.HasSuffix(v, "*") && found:
		mIss, mSub = exactStr(iss), prefixStr(sub[:len(sub)-1])
		if sub == "*" {
			mSub = present
		}
	case strings.HasSuffix(v, "*"):
		mIss, mSub = prefixStr(v[:len(v)-1]), present
	default:
		mIss, mSub = exactStr(iss), exactStr(sub)
	}
	return []*pred{andPred(jwtClaim([]string{"iss"}, mIss, listNone), jwtClaim([]string{"sub"}, mSub, listNone))}, nil
}

func jwtClaim(path []string, m strMatch, list listMode) *pred {
	return leafPred(&leaf{attr: attrMetadata, name: shared.JWTFilterName, path: append([]string{shared.JWTPayloadKey}, path...), m: m, list: list})
}

func cidrValue(a attr) valueFunc {
	return func(v string) ([]*pred, error) {
		p, err := parseCIDR(v)
		if err != nil {
			return nil, err
		}
		return []*pred{cidrLeaf(a, p)}, nil
	}
}

// parseCIDR accepts a CIDR or a bare address (a /32 or /128).
func parseCIDR(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", v)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP address %q", v)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func portValue(v string) ([]*pred, error) {
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q", v)
	}
	return []*pred{leafPred(&leaf{attr: attrDestPort, port: uint32(n)})}, nil
}

func hostValue(v string) ([]*pred, error) {
	m := istioMatch(v)
	m.ignoreCase = m.kind != matchPresent
	return []*pred{leafPred(&leaf{attr: attrHeader, name: ":authority", m: m})}, nil
}

func headerValue(name string) valueFunc {
	return func(v string) ([]*pred, error) {
		return []*pred{leafPred(&leaf{attr: attrHeader, name: name, m: istioMatch(v)})}, nil
	}
}

func pathValue(v string) ([]*pred, error) {
	if !strings.Contains(v, "{*}") && !strings.Contains(v, "{**}") {
		return []*pred{leafPred(&leaf{attr: attrPath, m: istioMatch(v)})}, nil
	}
	tmpl, re, err := uriTemplate(v)
	if err != nil {
		return nil, err
	}
	cfg, err := protoany.Marshal(&uritemplate.UriTemplateMatchConfig{PathTemplate: tmpl})
	if err != nil {
		return nil, err
	}
	return []*pred{leafPred(&leaf{attr: attrPathTemplate, tmpl: tmpl, tmplAny: cfg, m: strMatch{kind: matchRegex, value: re.String(), re: re}})}, nil
}

// Characters Envoy's uri_template allows in a literal or a matched segment.
const templateChars = `a-zA-Z0-9\-._~%!$&'()+,;:@=`

var templateLiteral = regexp.MustCompile(`^[` + templateChars + `]*$`)

// uriTemplate converts a path with {*} (one segment) and {**} (zero or more
// characters across segments) into Envoy's path_template and an equivalent regular
// expression. As Istio's CheckValidPathTemplate, {**} must be the last operator: no
// {*} or {**} may follow it, literal segments may ("/store/{**}/cart").
func uriTemplate(v string) (string, *regexp.Regexp, error) {
	if !strings.HasPrefix(v, "/") {
		return "", nil, fmt.Errorf("path template %q must start with /", v)
	}
	segs := strings.Split(v[1:], "/")
	tmpl := make([]string, len(segs))
	expr := make([]string, len(segs))
	matchAny := false
	for i, s := range segs {
		switch {
		case (s == "{*}" || s == "{**}") && matchAny:
			return "", nil, fmt.Errorf("path template %q: {**} must be the last operator (no {*} or {**} after it)", v)
		case s == "{*}":
			tmpl[i], expr[i] = "*", `[`+templateChars+`]+`
		case s == "{**}":
			tmpl[i], expr[i] = "**", `[`+templateChars+`/]*`
			matchAny = true
		case templateLiteral.MatchString(s):
			tmpl[i], expr[i] = s, regexp.QuoteMeta(s)
		default:
			return "", nil, fmt.Errorf("path template %q: segment %q must be {*}, {**} or literal text", v, s)
		}
	}
	re := regexp.MustCompile(`^/` + strings.Join(expr, "/") + `$`)
	return "/" + strings.Join(tmpl, "/"), re, nil
}
