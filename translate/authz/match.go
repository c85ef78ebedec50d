package authz

import (
	"net/netip"
	"regexp"
	"strings"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wardenmesh/warden/translate/internal/shared"
)

// The AuthorizationPolicy model: every rule compiles to predicate trees over request
// attributes. The RBAC builder renders the trees as Envoy Permission/Principal protos
// and the evaluator (Check) runs the same trees in Go, so both always agree on what a
// policy means.

// matchKind is how a string value is compared.
type matchKind uint8

const (
	matchExact matchKind = iota
	matchPrefix
	matchSuffix
	matchRegex
	// matchPresent: a header is present (present_match), or any other string value
	// is non-empty (safe_regex ".+").
	matchPresent
)

// strMatch is one string comparison, as an Envoy StringMatcher expresses it.
type strMatch struct {
	kind       matchKind
	value      string
	ignoreCase bool
	re         *regexp.Regexp // anchored, for matchRegex
}

// istioMatch reads Istio's value syntax: "*" presence, "abc*" prefix, "*abc" suffix,
// anything else exact.
func istioMatch(v string) strMatch {
	switch {
	case v == "*":
		return strMatch{kind: matchPresent}
	case strings.HasPrefix(v, "*"):
		return strMatch{kind: matchSuffix, value: v[1:]}
	case strings.HasSuffix(v, "*"):
		return strMatch{kind: matchPrefix, value: v[:len(v)-1]}
	}
	return strMatch{kind: matchExact, value: v}
}

func exactStr(v string) strMatch  { return strMatch{kind: matchExact, value: v} }
func prefixStr(v string) strMatch { return strMatch{kind: matchPrefix, value: v} }

// regexMatch is a full-match RE2 expression, as Envoy's safe_regex.
func regexMatch(expr string) strMatch {
	return strMatch{kind: matchRegex, value: expr, re: regexp.MustCompile(`^(?:` + expr + `)$`)}
}

func (m strMatch) match(v string) bool {
	switch m.kind {
	case matchPresent:
		return v != ""
	case matchRegex:
		return m.re.MatchString(v)
	}
	if m.ignoreCase {
		v, m.value = strings.ToLower(v), strings.ToLower(m.value)
	}
	switch m.kind {
	case matchPrefix:
		return strings.HasPrefix(v, m.value)
	case matchSuffix:
		return strings.HasSuffix(v, m.value)
	default:
		return v == m.value
	}
}

// attr is the request attribute a leaf predicate looks at.
type attr uint8

const (
	attrPrincipal      attr = iota // peer certificate URI SAN (authenticated.principal_name)
	attrDirectRemoteIP             // TCP peer address
	attrRemoteIP                   // original client address (XFF / proxy protocol)
	attrHeader                     // request header (":authority", ":method" included)
	attrMetadata                   // dynamic metadata (JWT payload, other filters)
	attrPath                       // normalised path without query
	attrPathTemplate               // path against a uri_template
	attrDestPort                   // target (container) port
	attrDestIP                     // original destination address
	attrSNI                        // requested server name
)

// leaf is one attribute comparison.
type leaf struct {
	attr    attr
	name    string   // header name, or metadata filter name
	path    []string // metadata path
	m       strMatch
	list    listMode // metadata: how list values match
	prefix  netip.Prefix
	port    uint32
	tmpl    string     // uri template, in Envoy syntax
	tmplAny *anypb.Any // its UriTemplateMatchConfig
}

// listMode says how a metadata matcher treats list values.
type listMode uint8

const (
	listNone   listMode = iota // only a string value can match
	listOrItem                 // a string value, or a list with a matching element
	listOnly                   // only a list with a matching element
)

// predOp combines predicates.
type predOp uint8

const (
	opAny predOp = iota
	opAnd
	opOr
	opNot
	opLeaf
)

// pred is a predicate tree node.
type pred struct {
	op   predOp
	kids []*pred
	leaf *leaf
}

func anyPred() *pred                        { return &pred{op: opAny} }
func andPred(kids ...*pred) *pred           { return &pred{op: opAnd, kids: kids} }
func orPred(kids ...*pred) *pred            { return &pred{op: opOr, kids: kids} }
func notPred(kid *pred) *pred               { return &pred{op: opNot, kids: []*pred{kid}} }
func leafPred(l *leaf) *pred                { return &pred{op: opLeaf, leaf: l} }
func neverPred() *pred                      { return notPred(anyPred()) }
func cidrLeaf(a attr, p netip.Prefix) *pred { return leafPred(&leaf{attr: a, prefix: p}) }

// attrs is the request as the evaluator sees it.
type attrs struct {
	principal string // "" on a plaintext connection
	directIP  netip.Addr
	remoteIP  netip.Addr
	headers   map[string]string // lower-case names; repeated headers joined with ","
	path      string
	claims    map[string]any // JWT payload; nil without a verified token
	destPort  uint32
	destIP    netip.Addr
	sni       string
}

func (p *pred) eval(a *attrs) bool {
	switch p.op {
	case opAny:
		return true
	case opAnd:
		for _, k := range p.kids {
			if !k.eval(a) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range p.kids {
			if k.eval(a) {
				return true
			}
		}
		return false
	case opNot:
		return !p.kids[0].eval(a)
	default:
		return p.leaf.eval(a)
	}
}

func (l *leaf) eval(a *attrs) bool {
	switch l.attr {
	case attrPrincipal:
		return a.principal != "" && l.m.match(a.principal)
	case attrDirectRemoteIP:
		return a.directIP.IsValid() && l.prefix.Contains(a.directIP)
	case attrRemoteIP:
		return a.remoteIP.IsValid() && l.prefix.Contains(a.remoteIP)
	case attrHeader:
		v, ok := a.headers[strings.ToLower(l.name)]
		if l.m.kind == matchPresent {
			return ok
		}
		return ok && l.m.match(v)
	case attrMetadata:
		return l.evalMetadata(a)
	case attrPath:
		return l.m.match(a.path)
	case attrPathTemplate:
		return l.m.re.MatchString(a.path)
	case attrDestPort:
		return a.destPort == l.port
	case attrDestIP:
		return a.destIP.IsValid() && l.prefix.Contains(a.destIP)
	case attrSNI:
		return l.m.match(a.sni)
	}
	return false
}

// evalMetadata resolves the path in the JWT payload (the only metadata the evaluator
// knows; other filters' metadata is absent, so it never matches).
func (l *leaf) evalMetadata(a *attrs) bool {
	if l.name != shared.JWTFilterName || len(l.path) == 0 || l.path[0] != shared.JWTPayloadKey || a.claims == nil {
		return false
	}
	var v any = a.claims
	for _, k := range l.path[1:] {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[k]; !ok {
			return false
		}
	}
	switch v := v.(type) {
	case string:
		return l.list != listOnly && l.m.match(v)
	case []any:
		if l.list == listNone {
			return false
		}
		for _, e := range v {
			if s, ok := e.(string); ok && l.m.match(s) {
				return true
			}
		}
	}
	return false
}
