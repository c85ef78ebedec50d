package translate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wardenmesh/warden/watch"
)

// WorkloadDescription is everything `wardenctl describe` shows about one workload,
// read from the same resolution Translate uses.
type WorkloadDescription struct {
	Name           string `json:"name"`
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	SPIFFEID       string `json:"spiffeId"`
	IP             string `json:"ip,omitempty"`
	Proxy          string `json:"proxy"` // ProxySidecar, ProxyGateway or ProxyNone
	// Connected and Certificate are set by wardend: whether the proxy is connected
	// now, and the certificate it is served (nil when none is).
	Connected   bool         `json:"connected"`
	Certificate *Certificate `json:"certificate,omitempty"`

	Services               []ServiceView         `json:"services,omitempty"`
	MTLS                   MTLSDescription       `json:"mtls"`
	AuthorizationPolicies  []AuthzPolicyView     `json:"authorizationPolicies,omitempty"`
	RequestAuthentications []RequestAuthnView    `json:"requestAuthentications,omitempty"`
	DestinationRules       []DestinationRuleView `json:"destinationRules,omitempty"`
	Egress                 *EgressView           `json:"egress,omitempty"` // view_egress.go
	// Diagnostics are the problems with the objects above, from the Input and from
	// translating this workload.
	Diagnostics []watch.Diagnostic `json:"diagnostics,omitempty"`
}

// Certificate describes a served workload certificate (never key material).
type Certificate struct {
	Serial    string    `json:"serial"` // hexadecimal
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
}

// ServiceView is one Service the workload backs.
type ServiceView struct {
	Name  string   `json:"name"` // ns/name
	Host  string   `json:"host"`
	Ports []string `json:"ports"` // "80->8080/http"
}

// MTLSDescription is the PeerAuthentication decision with its reasons.
type MTLSDescription struct {
	Mode   string `json:"mode,omitempty"` // workload-wide, for ports not listed
	Policy string `json:"policy,omitempty"`
	Reason string `json:"reason"`
	// The policy chosen at each level ("ns/name"), empty when none.
	MeshPolicy      string     `json:"meshPolicy,omitempty"`
	NamespacePolicy string     `json:"namespacePolicy,omitempty"`
	WorkloadPolicy  string     `json:"workloadPolicy,omitempty"`
	Ports           []PortMTLS `json:"ports,omitempty"`
	// IstioDifference, when set, says how callers in the mesh reach this workload
	// differently from Istio, deliberately (README, "Deliberate differences").
	IstioDifference string `json:"istioDifference,omitempty"`
}

// AuthzPolicyView is one AuthorizationPolicy that applies to the workload.
type AuthzPolicyView struct {
	Name   string `json:"name"` // ns/name
	Action string `json:"action"`
	Scope  string `json:"scope"` // mesh, namespace or workload
	DryRun bool   `json:"dryRun,omitempty"`
	// Rules is the number of rules in the spec; HTTPRules and TCPRules are the
	// indexes of those enforced on HTTP and on TCP ports (HTTP-only rules of ALLOW
	// policies are dropped on TCP ports).
	Rules     int    `json:"rules"`
	HTTPRules []int  `json:"httpRules"`
	TCPRules  []int  `json:"tcpRules"`
	Invalid   string `json:"invalid,omitempty"` // why the policy denies everything instead
	// CustomDeny: why this CUSTOM policy's provider is not called; its rules deny
	// the requests they match instead.
	CustomDeny string `json:"customDeny,omitempty"`
}

// RequestAuthnView is one RequestAuthentication that applies to the workload.
type RequestAuthnView struct {
	Name     string   `json:"name"` // ns/name
	Scope    string   `json:"scope"`
	Issuers  []string `json:"issuers,omitempty"`
	Rejected bool     `json:"rejected,omitempty"` // unreadable: every request gets 401
}

// DestinationRuleView is one DestinationRule that shapes the workload's outbound
// traffic, with the Service ports it applies to.
type DestinationRuleView struct {
	Name    string         `json:"name"` // ns/name
	Host    string         `json:"host"`
	Targets []DRTargetView `json:"targets"`
}

// DRTargetView is one Service port a DestinationRule applies to for this workload.
type DRTargetView struct {
	Service string `json:"service"` // host:port
	TLS     string `json:"tls"`     // DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL, or "auto mTLS" when the rule sets none
	Field   string `json:"field,omitempty"`
}

// Describe is the description of the workload running as pod in namespace; it is an
// error when the Input has no such workload.
func Describe(x *Index, namespace, pod string) (WorkloadDescription, error) {
	w := x.in.WorkloadByPod(namespace, pod)
	if w == nil {
		return WorkloadDescription{}, fmt.Errorf("no workload %s.%s in the mesh input", pod, namespace)
	}
	return x.describe(w, proxyKind(w) != ProxyNone), nil
}

// DescribeProxy is the description of a connected proxy, resolved with the labels
// it connected with, exactly as Translate resolves it.
func DescribeProxy(x *Index, p Proxy) WorkloadDescription {
	return x.describe(x.viewWorkload(p), true)
}

func (x *Index) describe(w *watch.Workload, proxied bool) WorkloadDescription {
	d := WorkloadDescription{
		Name:           w.PodName,
		Namespace:      w.Namespace,
		ServiceAccount: w.ServiceAccount,
		SPIFFEID:       spiffeID(x.in.TrustDomain, w.Namespace, w.ServiceAccount),
		IP:             w.IP,
		Proxy:          proxyKind(w),
	}
	refs := map[string]bool{viewRef(&w.Meta): true}
	for _, svc := range x.in.ServicesSelecting(w.Namespace, w.PodLabels) {
		refs[viewRef(&svc.Meta)] = true
		d.Services = append(d.Services, serviceView(x.in, svc, w))
	}
	d.MTLS = x.mtlsView(w)
	d.AuthorizationPolicies = x.authzViews(w, refs)
	d.RequestAuthentications = x.requestAuthnViews(w, refs)
	d.DestinationRules = x.drViews(w, refs)
	d.Egress = x.egressView(w, refs)
	for _, key := range []string{d.MTLS.MeshPolicy, d.MTLS.NamespacePolicy, d.MTLS.WorkloadPolicy} {
		if key != "" {
			refs["PeerAuthentication "+key] = true
		}
	}
	var diags []watch.Diagnostic
	if proxied {
		p := Proxy{ID: w.PodName + "." + w.Namespace, Namespace: w.Namespace, Pod: w.PodName,
			ServiceAccount: w.ServiceAccount, Labels: w.PodLabels, IP: w.IP, Gateway: w.Gateway}
		diags = x.Translate(p).Diagnostics
	}
	diags = append(diags, x.in.Diagnostics...)
	for _, dg := range diags {
		if refs[dg.Kind+" "+dg.Namespace+"/"+dg.Name] || x.securityInScope(dg, w) {
			d.Diagnostics = append(d.Diagnostics, dg)
		}
	}
	d.Diagnostics = sortedDiagnostics(d.Diagnostics)
	return d
}

func viewRef(m *watch.Meta) string { return m.Kind + " " + m.Namespace + "/" + m.Name }

// securityInScope reports whether a diagnostic is about a security policy whose scope
// may include w: rejected policies lose their selector, so every diagnostic of a
// policy kind in w's namespace or the root namespace is relevant.
func (x *Index) securityInScope(dg watch.Diagnostic, w *watch.Workload) bool {
	switch dg.Kind {
	case "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication":
		return dg.Namespace == w.Namespace || dg.Namespace == x.in.RootNamespace
	}
	return false
}

func serviceView(in *watch.Input, svc *watch.Service, w *watch.Workload) ServiceView {
	v := ServiceView{Name: svc.Namespace + "/" + svc.Name, Host: in.Hostname(svc)}
	for _, sp := range svc.Ports {
		proto := portProtocol(sp.Port, sp.Name, sp.AppProtocol).String()
		if !isStream(sp.Protocol) {
			proto = strings.ToLower(sp.Protocol)
		}
		target := "?"
		if tp := targetPort(sp, w); tp != 0 {
			target = fmt.Sprint(tp)
		}
		v.Ports = append(v.Ports, fmt.Sprintf("%d->%s/%s", sp.Port, target, proto))
	}
	return v
}

// mtlsView is the PeerAuthentication decision with the reason for each port.
func (x *Index) mtlsView(w *watch.Workload) MTLSDescription {
	if w.Gateway {
		return MTLSDescription{Reason: noteGateway}
	}
	m := x.workloadMTLS(w)
	v := MTLSDescription{
		Mode:            m.Mode.String(),
		Policy:          policyName(m.Policy),
		Reason:          modeReason(m),
		MeshPolicy:      m.MeshPolicy,
		NamespacePolicy: m.NamespacePolicy,
		WorkloadPolicy:  m.WorkloadPolicy,
	}
	for _, p := range newBuilder(x).inboundPorts(w, m) {
		mode, policy := m.PortDecision(p.port)
		v.Ports = append(v.Ports, PortMTLS{Port: p.port, Mode: mode.String(), Policy: policyName(policy), Reason: portReason(m, p.port)})
	}
	if !w.Sidecar {
		v.Reason += "; " + noteNoSidecar
	} else {
		nsMode, nsPolicy := x.pa.namespaceMode(w.Namespace)
		v.IstioDifference = istioClientDifference(m, nsMode, nsPolicy, v.Ports)
	}
	return v
}

// istioClientDifference explains the deliberate difference when the mesh and
// namespace levels DISABLE mTLS but the workload's own policy turns it on for some
// port: Istio's clients pick auto mTLS from the mesh and namespace modes only
// (BestEffortInferServiceMTLSMode) and send plaintext, which a STRICT port refuses
// (istio#56084); Warden's clients follow the workload's decision and send mTLS.
func istioClientDifference(m MTLS, nsMode Mode, nsPolicy string, ports []PortMTLS) string {
	if nsMode != ModeDisable {
		return ""
	}
	var strict, permissive []string
	add := func(port string, mode Mode) {
		switch mode {
		case ModeStrict:
			strict = append(strict, port)
		case ModePermissive:
			permissive = append(permissive, port)
		}
	}
	for _, p := range ports {
		mode, _ := m.PortDecision(p.Port)
		add(fmt.Sprint(p.Port), mode)
	}
	if len(ports) == 0 {
		add("every port", m.Mode)
	}
	if len(strict) == 0 && len(permissive) == 0 {
		return ""
	}
	msg := "deliberate difference from Istio: " + nsPolicy + " DISABLEs mTLS at the mesh/namespace level, and Istio's clients choose auto mTLS from that level only, so they would send plaintext here"
	if len(strict) > 0 {
		msg += "; STRICT port(s) " + strings.Join(strict, ", ") + " would refuse them (503, istio#56084)"
	}
	if len(permissive) > 0 {
		msg += "; PERMISSIVE port(s) " + strings.Join(permissive, ", ") + " would see them without a peer identity"
	}
	return msg + ". Warden's clients follow this workload's own mode and send mTLS"
}

// modeReason says which level decided the workload-wide mode, and what became of
// the policies chosen at the other levels: a more specific level that did not
// decide left the mode UNSET; a less specific one was overridden.
func modeReason(m MTLS) string {
	levels := []struct{ name, key string }{
		{"mesh-wide", m.MeshPolicy}, {"namespace-wide", m.NamespacePolicy}, {"workload", m.WorkloadPolicy},
	}
	decided := -1
	for i, l := range levels {
		if l.key != "" && l.key == m.Policy {
			decided = i
		}
	}
	if m.Rejected != "" {
		return "PeerAuthentication " + m.Rejected + " was rejected (see its diagnostic) and no good version of it is known: " +
			"its mode and selector are unknown, so every workload it might cover fails closed as STRICT until it is fixed or deleted"
	}
	var why string
	switch decided {
	case -1:
		why = "no PeerAuthentication sets a mode: the mesh default is PERMISSIVE"
	case 0:
		why = "mesh-wide policy " + m.MeshPolicy + " (root namespace)"
	case 1:
		why = "namespace-wide policy " + m.NamespacePolicy
	default:
		why = "workload policy " + m.WorkloadPolicy + " selects the pod's labels"
	}
	for i := len(levels) - 1; i >= 0; i-- {
		l := levels[i]
		switch {
		case l.key == "" || i == decided:
		case i > decided:
			why += "; " + l.name + " policy " + l.key + " leaves the mode UNSET"
		default:
			why += "; overrides " + l.name + " policy " + l.key
		}
	}
	return why
}

// portReason explains the decision for one target port.
func portReason(m MTLS, port uint32) string {
	if _, ok := m.Ports[port]; !ok {
		return "workload-wide mode"
	}
	if m.Rejected != "" {
		return "STRICT: " + m.Rejected + " was rejected (fails closed)"
	}
	if m.PortPolicy[port] == m.WorkloadPolicy {
		return fmt.Sprintf("portLevelMtls[%d] of %s", port, m.WorkloadPolicy)
	}
	return fmt.Sprintf("portLevelMtls[%d] of %s leaves the mode UNSET: workload-wide mode", port, m.WorkloadPolicy)
}

// authzViews lists the AuthorizationPolicies translation applies to w, with the
// rules that survive on HTTP and TCP chains.
func (x *Index) authzViews(w *watch.Workload, refs map[string]bool) []AuthzPolicyView {
	if w.Gateway {
		return nil
	}
	var out []AuthzPolicyView
	for _, p := range x.selectAuthz(w).set.Policies() {
		refs["AuthorizationPolicy "+p.Meta.Key()] = true
		v := AuthzPolicyView{Name: p.Meta.Key(), Action: p.Action, DryRun: p.DryRun, Invalid: p.Invalid,
			CustomDeny: p.CustomDeny, HTTPRules: []int{}, TCPRules: []int{}}
		spec := x.authzSpec(p.Meta)
		if spec == nil {
			v.Scope = attachRejected(x.in.RootNamespace, p.Meta, workloadOf(w)).String()
		} else {
			v.Rules = len(spec.Spec.GetRules())
			v.Scope = policyScope(x.in.RootNamespace, authzPolicyRef(spec)).String()
		}
		if v.Rules > 0 && p.Invalid == "" {
			v.HTTPRules, v.TCPRules = p.HTTPRules, p.TCPRules
		}
		out = append(out, v)
	}
	return out
}

func (x *Index) authzSpec(m *watch.Meta) *authzConfig {
	for _, c := range x.in.AuthorizationPolicies {
		if &c.Meta == m {
			return c
		}
	}
	return nil
}

// requestAuthnViews lists the RequestAuthentications translation applies to w.
func (x *Index) requestAuthnViews(w *watch.Workload, refs map[string]bool) []RequestAuthnView {
	b := newBuilder(x)
	var out []RequestAuthnView
	for _, ra := range x.in.RequestAuthentications {
		if !b.requestAuthnSelects(ra, w) {
			continue
		}
		refs[viewRef(&ra.Meta)] = true
		v := RequestAuthnView{Name: ra.Key(), Scope: policyScope(x.in.RootNamespace, requestAuthnPolicy(ra)).String()}
		for _, r := range ra.Spec.GetJwtRules() {
			v.Issuers = append(v.Issuers, r.GetIssuer())
		}
		out = append(out, v)
	}
	for _, m := range b.rejectedRequestAuthns(w) {
		refs[viewRef(&m)] = true
		out = append(out, RequestAuthnView{Name: m.Key(), Scope: attachRejected(x.in.RootNamespace, &m, workloadOf(w)).String(), Rejected: true})
	}
	return out
}

// drViews lists the DestinationRules that apply to w's calls, per Service port, with
// the same lookup the outbound clusters use.
func (x *Index) drViews(w *watch.Workload, refs map[string]bool) []DestinationRuleView {
	byKey := map[string]*DestinationRuleView{}
	var keys []string
	for _, s := range x.services {
		r := x.dr.lookup(w.Namespace, w.PodLabels, s.namespace(), s.fqdn)
		if r == nil || (s.se != nil && !x.seVisibleTo(s.se.cfg, w.Namespace)) {
			continue
		}
		key := r.cfg.Key()
		v := byKey[key]
		if v == nil {
			refs[viewRef(&r.cfg.Meta)] = true
			v = &DestinationRuleView{Name: key, Host: r.cfg.Spec.GetHost()}
			byKey[key] = v
			keys = append(keys, key)
		}
		tls, field := r.tlsFor(s.port.Port)
		mode := "auto mTLS"
		if tls != nil {
			mode = tls.GetMode().String()
		}
		v.Targets = append(v.Targets, DRTargetView{Service: fmt.Sprintf("%s:%d", s.fqdn, s.port.Port), TLS: mode, Field: field})
	}
	slices.Sort(keys)
	out := make([]DestinationRuleView, 0, len(keys))
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	return out
}
