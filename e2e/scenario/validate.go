package scenario

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation"
)

var (
	kebabCase  = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	httpToken  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	kindName   = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	apiVersion = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$`)
)

// validate reports every invalid value of a parsed, substituted and defaulted scenario.
func validate(p *problems, sc *Scenario) {
	switch {
	case sc.Name == "":
		p.add("name", "required")
	case !kebabCase.MatchString(sc.Name):
		p.add("name", fmt.Sprintf("%q: want kebab-case (lower-case letters and digits joined by single dashes)", sc.Name))
	}
	for i, m := range sc.Manifests {
		validateManifest(p, index("manifests", i), m, sc.Dir)
	}
	for _, key := range sortedKeys(sc.Apps) {
		validateApp(p, child("apps", key), key, sc.Apps[key])
	}
	validateExternals(p, sc.Externals, sc.Dir)
	if len(sc.Steps) == 0 {
		p.add("steps", "at least one step is required")
	}
	seen := make(map[string]int, len(sc.Steps))
	for i := range sc.Steps {
		path := index("steps", i)
		st := &sc.Steps[i]
		if first, ok := seen[st.Name]; ok {
			p.add(child(path, "name"), fmt.Sprintf("%q is also the name of %s", st.Name, index("steps", first)))
		} else {
			seen[st.Name] = i
		}
		validateStep(p, path, st, sc.Dir)
	}
}

func validateManifest(p *problems, path string, m ManifestRef, dir string) {
	switch {
	case m.Path != "" && m.Inline != "":
		p.add(path, "has both path and inline; want one")
		return
	case m.Path == "" && m.Inline == "":
		p.add(path, "needs path or inline")
		return
	}
	if m.Namespace != "" {
		if errs := validation.IsDNS1123Label(m.Namespace); len(errs) > 0 {
			p.add(child(path, "namespace"), fmt.Sprintf("%q: %s", m.Namespace, errs[0]))
			return
		}
	}
	field := child(path, "inline")
	if m.Path != "" {
		field = child(path, "path")
	}
	_, data, err := m.Read(dir)
	switch {
	case err != nil:
		p.add(field, err.Error())
	case len(data) == 0:
		p.add(field, "holds no objects")
	}
}

func validateApp(p *problems, path, key string, app App) {
	if _, err := ParsePodRef(key); err != nil {
		p.add(path, "key "+err.Error())
	}
	if app.ExtAuthz && (len(app.Forward) > 0 || len(app.Static) > 0) {
		p.add(child(path, "extAuthz"), "an ext_authz server answers every path; remove forward and static")
	}
	switch {
	case app.ExtAuthzGrpc && app.ExtAuthz:
		p.add(child(path, "extAuthzGrpc"), "has both extAuthz and extAuthzGrpc; want one")
	case app.ExtAuthzGrpc && (len(app.Forward) > 0 || len(app.Static) > 0):
		p.add(child(path, "extAuthzGrpc"), "an ext_authz server answers every path; remove forward and static")
	}
	if sa := app.ExtAuthzAllowServiceAccount; sa != "" {
		switch {
		case !app.ExtAuthzGrpc:
			p.add(child(path, "extAuthzAllowServiceAccount"), "needs extAuthzGrpc: true (only the gRPC server checks TCP connections)")
		case strings.ContainsAny(sa, "/ "):
			p.add(child(path, "extAuthzAllowServiceAccount"), "want a service account name, without / or spaces")
		}
	}
	seen := map[int]string{}
	for _, list := range []struct {
		name  string
		ports []int
	}{{"tcpEcho", app.TCPEcho}, {"serverFirst", app.ServerFirst}} {
		for i, port := range list.ports {
			field := fmt.Sprintf("%s[%d]", child(path, list.name), i)
			switch {
			case port < 1 || port > 65535:
				p.add(field, fmt.Sprintf("%d: want a port from 1 to 65535", port))
			case seen[port] == list.name:
				p.add(field, fmt.Sprintf("%d is listed twice", port))
			case seen[port] != "":
				p.add(field, fmt.Sprintf("%d is also in %s; want one", port, seen[port]))
			}
			seen[port] = list.name
		}
	}
	for _, route := range sortedKeys(app.Forward) {
		field := child(child(path, "forward"), route)
		if !strings.HasPrefix(route, "/") {
			p.add(field, "path must start with /")
		}
		if err := checkHTTPURL(app.Forward[route]); err != nil {
			p.add(field, err.Error())
		}
		if _, ok := app.Static[route]; ok {
			p.add(field, "path is also in static; want one")
		}
	}
	for _, route := range sortedKeys(app.Static) {
		if !strings.HasPrefix(route, "/") {
			p.add(child(child(path, "static"), route), "path must start with /")
		}
	}
}

func validateStep(p *problems, path string, st *Step, dir string) {
	if strings.IndexFunc(st.Name, unicode.IsControl) >= 0 {
		p.add(child(path, "name"), fmt.Sprintf("%q: control characters are not allowed", st.Name))
	}
	var kinds []string
	for kind, set := range map[StepKind]bool{
		KindRequest:         st.Request != nil,
		KindPeerCertificate: st.PeerCertificate != nil,
		KindApply:           st.Apply != nil,
		KindDelete:          st.Delete != nil,
	} {
		if set {
			kinds = append(kinds, string(kind))
		}
	}
	switch {
	case len(kinds) == 0:
		p.add(path, "needs one of request, peerCertificate, apply, delete")
		return
	case len(kinds) > 1:
		p.add(path, "has "+strings.Join(sortedKeys(setOf(kinds)), " and ")+"; want one per step")
		return
	}
	expectPath := child(path, "expect")
	switch st.Kind() {
	case KindRequest:
		validateRequest(p, child(path, "request"), st.Request)
		validateRequestExpect(p, expectPath, st.Request, st.Expect)
	case KindPeerCertificate:
		validatePeerCert(p, child(path, "peerCertificate"), st.PeerCertificate)
		validatePeerExpect(p, expectPath, st.Expect)
	case KindApply:
		if len(st.Apply) == 0 {
			p.add(child(path, "apply"), "lists no manifests")
		}
		for i, m := range st.Apply {
			validateManifest(p, index(child(path, "apply"), i), m, dir)
		}
	case KindDelete:
		if len(st.Delete) == 0 {
			p.add(child(path, "delete"), "lists no objects")
		}
		for i, o := range st.Delete {
			validateObjectRef(p, index(child(path, "delete"), i), o)
		}
	}
	if k := st.Kind(); (k == KindApply || k == KindDelete) && st.Expect != nil {
		p.add(expectPath, "not allowed in "+string(k)+" steps")
	}
}

func setOf(items []string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, it := range items {
		m[it] = true
	}
	return m
}

func validateRequest(p *problems, path string, r *Request) {
	validateFrom(p, child(path, "from"), r.From, true)
	switch {
	case r.URL != "" && r.TCP != "":
		p.add(path, "has both url and tcp; want one")
	case r.URL == "" && r.TCP == "":
		p.add(path, "needs url or tcp")
	case r.URL != "":
		if err := checkHTTPURL(r.URL); err != nil {
			p.add(child(path, "url"), err.Error())
		}
		if !httpToken.MatchString(r.Method) {
			p.add(child(path, "method"), fmt.Sprintf("%q is not an HTTP method", r.Method))
		}
		validateHeaders(p, child(path, "headers"), r.Headers)
	default:
		if _, _, err := ParseHostPort(r.TCP); err != nil {
			p.add(child(path, "tcp"), err.Error())
		}
		set := map[string]bool{"method": r.Method != "", "headers": r.Headers != nil, "body": r.Body != ""}
		for _, field := range sortedKeys(set) {
			if set[field] {
				p.add(child(path, field), "not allowed in tcp requests")
			}
		}
	}
	if r.ServerFirst && r.TCP == "" {
		p.add(child(path, "serverFirst"), "only for tcp requests")
	}
	if r.To != "" {
		if _, _, err := ParsePodPort(r.To); err != nil {
			p.add(child(path, "to"), err.Error())
		}
	}
}

// validateFrom checks a caller: `namespace/name`, or `outside` when allowed.
func validateFrom(p *problems, path, from string, outsideOK bool) {
	switch {
	case from == "":
		p.add(path, "required")
	case from == Outside && !outsideOK:
		p.add(path, "outside has no workload certificate; want namespace/name")
	case from == Outside:
	default:
		_, err := ParsePodRef(from)
		switch {
		case err != nil && outsideOK && !strings.Contains(from, "/"):
			p.add(path, err.Error()+" or "+Outside)
		case err != nil:
			p.add(path, err.Error())
		}
	}
}

func validateHeaders(p *problems, path string, headers map[string]string) {
	seen := make(map[string]string, len(headers))
	for _, name := range sortedKeys(headers) {
		field := child(path, name)
		if !httpToken.MatchString(name) {
			p.add(field, "not a valid header name")
		}
		if strings.ContainsAny(headers[name], "\r\n\x00") {
			p.add(field, "value holds a line break or NUL")
		}
		lower := strings.ToLower(name)
		if other, ok := seen[lower]; ok {
			p.add(field, fmt.Sprintf("same header as %q (names are case-insensitive)", other))
		}
		seen[lower] = name
	}
}

// checkHTTPURL accepts an absolute http or https URL with a host.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want an http:// or https:// URL", raw)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q: URL has no host", raw)
	}
	if port := u.Port(); port != "" {
		if _, err := parsePort(port); err != nil {
			return fmt.Errorf("%q: %w", raw, err)
		}
	}
	return nil
}

func validatePeerCert(p *problems, path string, pc *PeerCert) {
	validateFrom(p, child(path, "from"), pc.From, false)
	switch {
	case pc.To == "":
		p.add(child(path, "to"), "required")
	default:
		if _, _, err := ParseHostPort(pc.To); err != nil {
			p.add(child(path, "to"), err.Error())
		}
	}
}

func validateObjectRef(p *problems, path string, o ObjectRef) {
	if o.APIVersion != "" && !apiVersion.MatchString(o.APIVersion) {
		p.add(child(path, "apiVersion"), fmt.Sprintf("%q: want version or group/version", o.APIVersion))
	}
	switch {
	case o.Kind == "":
		p.add(child(path, "kind"), "required")
	case !kindName.MatchString(o.Kind):
		p.add(child(path, "kind"), fmt.Sprintf("%q: want a kind such as PeerAuthentication", o.Kind))
	}
	if o.Name == "" {
		p.add(child(path, "name"), "required")
	} else if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
		p.add(child(path, "name"), fmt.Sprintf("%q: %s", o.Name, errs[0]))
	}
	switch {
	case ClusterScoped(o.Kind) && o.Namespace != "":
		p.add(child(path, "namespace"), o.Kind+" is cluster-scoped; remove namespace")
	case ClusterScoped(o.Kind):
	case o.Namespace == "":
		p.add(child(path, "namespace"), "required")
	default:
		if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
			p.add(child(path, "namespace"), fmt.Sprintf("%q: %s", o.Namespace, errs[0]))
		}
	}
}

// expectFields lists the fields an Expect sets, by YAML name.
func expectFields(e *Expect) map[string]bool {
	return map[string]bool{
		"status":                e.Status != 0,
		"bodyContains":          e.BodyContains != "",
		"bodyNotContains":       e.BodyNotContains != "",
		"connectionError":       e.ConnectionError,
		"echo":                  e.Echo,
		"uriSAN":                e.URISAN != "",
		"chainsToMeshRoot":      e.ChainsToMeshRoot,
		"maxValidity":           e.MaxValidity != "",
		"responseHeaders":       e.ResponseHeaders != nil,
		"responseHeadersAbsent": e.ResponseHeadersAbsent != nil,
		"envoyStats":            e.EnvoyStats != nil,
	}
}

// onlyFields reports every field e sets that is not in allowed.
func onlyFields(p *problems, path string, e *Expect, what string, allowed ...string) {
	ok := setOf(allowed)
	set := expectFields(e)
	for _, name := range sortedKeys(set) {
		if set[name] && !ok[name] {
			p.add(child(path, name), "not allowed for "+what)
		}
	}
}

func validateRequestExpect(p *problems, path string, r *Request, e *Expect) {
	if r.IsTCP() {
		if e == nil {
			p.add(path, "required: echo or connectionError")
			return
		}
		onlyFields(p, path, e, "tcp requests", "echo", "connectionError")
		if e.Echo == e.ConnectionError {
			p.add(path, "want exactly one of echo: true and connectionError: true")
		}
		return
	}
	if e == nil {
		p.add(path, "required: status or connectionError")
		return
	}
	onlyFields(p, path, e, "http requests", "status", "bodyContains", "bodyNotContains", "connectionError",
		"responseHeaders", "responseHeadersAbsent", "envoyStats")
	validateResponseHeaders(p, path, e)
	if e.EnvoyStats != nil {
		validateEnvoyStats(p, child(path, "envoyStats"), e.EnvoyStats)
	}
	switch {
	case e.Status != 0 && e.ConnectionError:
		p.add(path, "has both status and connectionError; want one")
	case e.Status == 0 && !e.ConnectionError:
		p.add(path, "needs status or connectionError: true")
	case e.Status != 0 && (e.Status < 100 || e.Status > 599):
		p.add(child(path, "status"), strconv.Itoa(e.Status)+": want an HTTP status from 100 to 599")
	case e.ConnectionError && (e.BodyContains != "" || e.BodyNotContains != ""):
		p.add(path, "bodyContains and bodyNotContains need a response; remove them or expect a status")
	case e.ConnectionError && (e.ResponseHeaders != nil || e.ResponseHeadersAbsent != nil):
		p.add(path, "responseHeaders and responseHeadersAbsent need a response; remove them or expect a status")
	}
}

// validateResponseHeaders checks the names (HTTP tokens, each once whatever its
// case, and never both wanted and absent) and values of the response header checks.
func validateResponseHeaders(p *problems, path string, e *Expect) {
	if e.ResponseHeaders != nil && len(e.ResponseHeaders) == 0 {
		p.add(child(path, "responseHeaders"), "lists no headers")
	}
	if e.ResponseHeadersAbsent != nil && len(e.ResponseHeadersAbsent) == 0 {
		p.add(child(path, "responseHeadersAbsent"), "lists no headers")
	}
	validateHeaders(p, child(path, "responseHeaders"), e.ResponseHeaders)
	wanted := map[string]bool{}
	for name := range e.ResponseHeaders {
		wanted[strings.ToLower(name)] = true
	}
	seen := map[string]bool{}
	for i, name := range e.ResponseHeadersAbsent {
		field := index(child(path, "responseHeadersAbsent"), i)
		lower := strings.ToLower(name)
		switch {
		case !httpToken.MatchString(name):
			p.add(field, fmt.Sprintf("%q is not a valid header name", name))
		case seen[lower]:
			p.add(field, fmt.Sprintf("%q is listed twice (names are case-insensitive)", name))
		case wanted[lower]:
			p.add(field, fmt.Sprintf("%q is also in responseHeaders; want one", name))
		}
		seen[lower] = true
	}
}

// statName is a counter name as Envoy's admin /stats prints it.
var statName = regexp.MustCompile(`^[A-Za-z0-9_.:|/-]+$`)

func validateEnvoyStats(p *problems, path string, s *EnvoyStats) {
	if s.Pod == Outside {
		p.add(child(path, "pod"), "outside has no Envoy; want namespace/name of a proxy")
	} else {
		validateFrom(p, child(path, "pod"), s.Pod, false)
	}
	if len(s.Increase) == 0 {
		p.add(child(path, "increase"), "required: at least one counter")
	}
	for _, name := range sortedKeys(s.Increase) {
		field := child(child(path, "increase"), name)
		if !statName.MatchString(name) {
			p.add(field, "not an Envoy stat name (letters, digits and _ . : | / -)")
		}
		if s.Increase[name] < 0 {
			p.add(field, "a counter never decreases; want 0 or more")
		}
	}
}

func validatePeerExpect(p *problems, path string, e *Expect) {
	if e == nil {
		p.add(path, "required: uriSAN, chainsToMeshRoot or maxValidity")
		return
	}
	onlyFields(p, path, e, "peerCertificate steps", "uriSAN", "chainsToMeshRoot", "maxValidity")
	if e.URISAN == "" && !e.ChainsToMeshRoot && e.MaxValidity == "" {
		p.add(path, "needs uriSAN, chainsToMeshRoot or maxValidity")
	}
	if e.URISAN != "" {
		if u, err := url.Parse(e.URISAN); err != nil || u.Scheme == "" {
			p.add(child(path, "uriSAN"), fmt.Sprintf("%q: want a URI such as spiffe://cluster.local/ns/default/sa/sleep", e.URISAN))
		}
	}
	if e.MaxValidity != "" {
		d, err := time.ParseDuration(e.MaxValidity)
		switch {
		case err != nil:
			p.add(child(path, "maxValidity"), fmt.Sprintf("%q: want a duration such as 24h", e.MaxValidity))
		case d <= 0:
			p.add(child(path, "maxValidity"), fmt.Sprintf("%q: want a positive duration", e.MaxValidity))
		}
	}
}
