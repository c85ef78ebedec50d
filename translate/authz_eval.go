package translate

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

// Check evaluates the AuthorizationPolicies that apply to proxy for req, with the
// same compiled policies the RBAC filters are built from.
func Check(in *watch.Input, proxy Proxy, req CheckRequest) CheckResult {
	return NewIndex(in).Check(proxy, req)
}

// Check is the package-level Check using the Index's precomputed state.
func (x *Index) Check(proxy Proxy, req CheckRequest) CheckResult {
	w := x.proxyWorkload(proxy)
	if proxy.Gateway || w.Gateway {
		return x.checkGateway(proxy, req)
	}
	mtls := x.workloadMTLS(w)
	res := CheckResult{Proxy: w.PodName + "." + w.Namespace, Protocol: "TCP"}
	port, http := x.checkPort(w, mtls, req.Port)
	res.Port = port
	if http {
		res.Protocol = "HTTP"
	}
	mode := mtls.PortMode(port)
	res.MTLSMode = mode.String()

	a := &attrs{destPort: port, sni: req.SNI, headers: map[string]string{}}
	a.destIP, _ = netip.ParseAddr(w.IP)
	principal, srcIP, plaintext := x.caller(req, mode)
	if plaintext && mode == ModeStrict {
		res.Decision, res.ConnectionRefused = "DENY", true
		res.Reason = "the port requires mTLS (PeerAuthentication STRICT) and the caller has no sidecar: the connection is closed before authorization"
		return res
	}
	a.principal, res.Principal = principal, principal
	if a.sni == "" && principal != "" && req.FromPod != "" && req.Principal == "" {
		a.sni = meshSNIFor(x.in, w, port) // what the caller's sidecar sends
	}
	a.directIP, _ = netip.ParseAddr(srcIP)
	a.remoteIP = a.directIP
	if req.RemoteIP != "" {
		a.remoteIP, _ = netip.ParseAddr(req.RemoteIP)
	}
	if http {
		x.httpAttrs(a, w, port, req)
		res.Path = a.path
	}

	set := x.authz.selectAuthz(w)
	pols := set.tcp
	if http {
		pols = set.http
	}
	evaluate(&res, pols, a)
	return res
}

// checkPort resolves the target port and whether its chain is HTTP.
func (x *Index) checkPort(w *watch.Workload, mtls MTLS, want uint32) (uint32, bool) {
	ports := newBuilder(x).inboundPorts(w, mtls)
	for _, p := range ports {
		if (want == 0 && p.http && !p.passthrough) || (want != 0 && p.port == want) {
			return p.port, p.http && !p.passthrough
		}
	}
	return want, false
}

// caller is the identity and address Envoy sees for the request's caller.
func (x *Index) caller(req CheckRequest, mode Mode) (principal, ip string, plaintext bool) {
	ip = req.SourceIP
	if req.FromPod != "" {
		pod, ns, _ := strings.Cut(req.FromPod, ".")
		if src := x.in.WorkloadByPod(ns, pod); src != nil {
			if ip == "" {
				ip = src.IP
			}
			if req.Principal == "" && src.Sidecar && mode != ModeDisable {
				principal = spiffeID(x.in.TrustDomain, src.Namespace, src.ServiceAccount)
			}
		}
	}
	if req.Principal != "" && mode != ModeDisable {
		principal = req.Principal
		if !strings.HasPrefix(principal, "spiffe://") {
			principal = "spiffe://" + principal
		}
	}
	return principal, ip, principal == ""
}

func (x *Index) httpAttrs(a *attrs, w *watch.Workload, port uint32, req CheckRequest) {
	for k, v := range req.Headers {
		a.headers[strings.ToLower(k)] = v
	}
	method := cmp.Or(req.Method, "GET")
	path := cmp.Or(req.Path, "/")
	host := req.Host
	if host == "" {
		host = defaultHost(x.in, w, port)
	}
	a.headers[":method"], a.headers[":path"], a.headers[":authority"] = method, path, host
	a.path = normalizePath(path, x.in.Mesh.GetPathNormalization().GetNormalization())
	a.claims = spaceDelimited(req.Claims)
}

// defaultHost is "<service>.<namespace>" of the first Service whose target port is port.
func defaultHost(in *watch.Input, w *watch.Workload, port uint32) string {
	for _, svc := range in.ServicesSelecting(w.Namespace, w.PodLabels) {
		for _, sp := range svc.Ports {
			if targetPort(sp, w) == port {
				return svc.Name + "." + svc.Namespace
			}
		}
	}
	return w.PodName + "." + w.Namespace
}

// meshSNIFor is the SNI a sidecar sends for mesh mTLS to target port of w, through
// the first Service whose target port it is; "" when none.
func meshSNIFor(in *watch.Input, w *watch.Workload, port uint32) string {
	for _, svc := range in.ServicesSelecting(w.Namespace, w.PodLabels) {
		for _, sp := range svc.Ports {
			if targetPort(sp, w) == port {
				return meshSNI(sp.Port, in.Hostname(svc))
			}
		}
	}
	return ""
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

func firstMatch(es []entry, a *attrs) (entry, bool) {
	for _, e := range es {
		if e.matches(a) {
			return e, true
		}
	}
	return entry{}, false
}

// evaluate runs Istio's order: CUSTOM, AUDIT, DENY, ALLOW; dry-run beside.
func evaluate(res *CheckResult, pols []*authzPolicy, a *attrs) {
	for _, p := range pols {
		if p.invalid != "" {
			res.Problems = append(res.Problems, p.ref()+": "+p.invalid)
		}
	}
	for _, provider := range customProviders(pols) {
		if e, ok := firstMatch(entries(ofProvider(pols, provider), actionCustom, false), a); ok {
			res.Custom = append(res.Custom, CustomCall{Provider: provider, RuleRef: e.ref()})
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
