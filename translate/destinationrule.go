package translate

import (
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/wardenmesh/warden/watch"
)

// drRule is one DestinationRule with its host made fully qualified.
type drRule struct {
	cfg      *watch.Config[*networking.DestinationRule]
	host     string       // FQDN, "*" or "*.<suffix>"
	policy   attachPolicy // its workloadSelector, for attach
	selector bool         // a workloadSelector is present, even with no labels
}

// drIndex finds the DestinationRule that applies to a Service as Istio does: the
// proxy's namespace first, then the Service's, then the root namespace; within one
// namespace the most specific host wins (exact, then the longest wildcard), then the
// oldest rule. A rule with a workloadSelector applies only to matching proxies in its
// own namespace, ahead of that namespace's other rules; as in Istio, a workloadSelector
// that is present but has no labels is such a rule, matching every proxy there.
type drIndex struct {
	root string
	byNS map[string][]*drRule // Input order: oldest first
}

func newDRIndex(in *watch.Input) *drIndex {
	x := &drIndex{root: in.RootNamespace, byNS: map[string][]*drRule{}}
	for _, dr := range in.DestinationRules {
		r := &drRule{cfg: dr, host: fqdnHost(dr.Spec.GetHost(), dr.Namespace, in.DomainSuffix), policy: destinationRulePolicy(dr)}
		r.selector = policyScope(in.RootNamespace, r.policy) == ScopeWorkload
		x.byNS[dr.Namespace] = append(x.byNS[dr.Namespace], r)
	}
	return x
}

// fqdnHost expands a short host name ("catalog") relative to the rule's namespace.
func fqdnHost(host, namespace, suffix string) string {
	if host == "*" || strings.Contains(host, ".") {
		return host
	}
	return host + "." + namespace + ".svc." + suffix
}

// hostScore ranks how specifically pattern matches host: -1 for no match.
func hostScore(pattern, host string) int {
	switch {
	case pattern == host:
		return 1 << 30
	case pattern == "*":
		return 0
	case strings.HasPrefix(pattern, "*.") && strings.HasSuffix(host, pattern[1:]):
		return len(pattern)
	default:
		return -1
	}
}

// visibleTo applies exportTo: empty or "*" is everywhere, "." its own namespace.
func visibleTo(r *drRule, namespace string) bool {
	exports := r.cfg.Spec.GetExportTo()
	if len(exports) == 0 {
		return true
	}
	for _, e := range exports {
		if e == "*" || e == namespace || (e == "." && r.cfg.Namespace == namespace) {
			return true
		}
	}
	return false
}

// lookup returns the rule for the Service host as seen from a proxy, or nil.
func (x *drIndex) lookup(proxyNS string, proxyLabels map[string]string, svcNS, host string) *drRule {
	for i, ns := range []string{proxyNS, svcNS, x.root} {
		if (i == 1 && ns == proxyNS) || (i == 2 && (ns == proxyNS || ns == svcNS)) {
			continue
		}
		if r := x.best(x.byNS[ns], ns == proxyNS, proxyNS, proxyLabels, host); r != nil {
			return r
		}
	}
	return nil
}

func (x *drIndex) best(rules []*drRule, local bool, proxyNS string, labels map[string]string, host string) *drRule {
	var found *drRule
	score, selected := -1, false
	for _, r := range rules {
		if r.selector && !(local && x.selects(r, proxyNS, labels)) {
			continue
		}
		if !visibleTo(r, proxyNS) {
			continue
		}
		s := hostScore(r.host, host)
		if s < 0 {
			continue
		}
		sel := r.selector
		// Selector rules first, then host specificity; ties keep the older rule.
		if found == nil || (sel && !selected) || (sel == selected && s > score) {
			found, score, selected = r, s, sel
		}
	}
	return found
}

// selects reports whether the workloadSelector of r picks a proxy of namespace with
// labels (attach): an empty workloadSelector picks every proxy of its namespace.
func (x *drIndex) selects(r *drRule, namespace string, labels map[string]string) bool {
	return attach(x.root, r.policy, attachWorkload{namespace: namespace, labels: labels}).attached()
}

// selectorKey names the selector rules that apply to a proxy, so that proxies of one
// namespace with the same applicable rules can share outbound configuration.
func (x *drIndex) selectorKey(proxyNS string, labels map[string]string) string {
	var ids []string
	for i, r := range x.byNS[proxyNS] {
		if r.selector && x.selects(r, proxyNS, labels) {
			ids = append(ids, strconv.Itoa(i))
		}
	}
	return strings.Join(ids, ",")
}

// tlsFor returns the client TLS settings of the rule for a Service port: when a
// portLevelSettings entry names the port, that entry's tls, else the rule's
// top-level tls. Nil means none (auto mTLS). As Istio's GetPortLevelTrafficPolicy
// (pilot/pkg/networking/util/util.go), a port entry does not inherit the top level:
// an entry without tls leaves the port without TLS settings, not with the
// top-level ones. The first entry for the port counts, as there.
func (r *drRule) tlsFor(port uint32) (tls *networking.ClientTLSSettings, field string) {
	if r == nil {
		return nil, ""
	}
	tp := r.cfg.Spec.GetTrafficPolicy()
	for i, pls := range tp.GetPortLevelSettings() {
		if pls.GetPort() != nil && pls.GetPort().GetNumber() == port {
			if pls.GetTls() == nil {
				return nil, "spec.trafficPolicy.portLevelSettings[" + strconv.Itoa(i) + "]"
			}
			return pls.GetTls(), "spec.trafficPolicy.portLevelSettings[" + strconv.Itoa(i) + "].tls"
		}
	}
	if tp.GetTls() != nil {
		return tp.GetTls(), "spec.trafficPolicy.tls"
	}
	return nil, ""
}
