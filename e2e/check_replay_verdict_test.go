package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/translate/authz"
)

// The decisions compared between Envoy and `wardenctl check`.
const (
	decideAllow   = "ALLOW"
	decideDeny    = "DENY"
	decideRefused = "connection refused"
	// decideProvider: a CUSTOM provider is asked and, without its allow header, denies.
	decideProvider = "denied by the CUSTOM provider"
)

// extAuthzAllow is the header the test app's ext_authz server allows on (e2e/app).
const extAuthzAllow, extAuthzAllowValue = "x-ext-authz", "allow"

// envoyDecision reads what the first proxy on the path decided from what the caller
// got. skip is set when the answer comes from a filter other than the authorization
// filters check models.
func envoyDecision(res harness.Result) (decision, skip string) {
	switch {
	case res.ConnectionError:
		return decideRefused, ""
	case res.Error != "" || res.Status == 0:
		return "", "no HTTP answer: " + res.Error
	case res.Status == 401:
		return "", "jwt_authn rejected the token (401)"
	case res.Status == 403 && strings.Contains(res.Body, "RBAC: access denied"):
		return decideDeny, ""
	case res.Status == 403 && strings.Contains(res.Body, "denied by ext_authz"):
		return decideProvider, ""
	case res.Status == 403 && strings.Contains(res.Body, "Jwt"):
		// jwt_authn's own 403s: "Audiences in Jwt are not allowed", ...
		return "", "jwt_authn rejected the token (403)"
	case res.Status == 403:
		return decideDeny, ""
	}
	// Any other answer (2xx, a router 404, a 500 relayed from an upstream hop) went
	// through the first proxy's authorization filters.
	return decideAllow, ""
}

// checkDecision is the decision check's answer means for a request that carries
// headers: a CUSTOM provider is asked first and denies unless the request carries
// its allow header.
func checkDecision(cr authz.CheckResult, headers map[string]string) string {
	switch {
	case cr.ConnectionRefused:
		return decideRefused
	case len(cr.Custom) > 0 && !hasHeader(headers, extAuthzAllow, extAuthzAllowValue):
		return decideProvider
	}
	return cr.Decision
}

func hasHeader(headers map[string]string, name, value string) bool {
	for k, v := range headers {
		if strings.EqualFold(k, name) && v == value {
			return true
		}
	}
	return false
}

// compareDecisions returns a skip reason, or a disagreement ("" when they agree).
func compareDecisions(envoy string, cr authz.CheckResult, headers map[string]string) (skip, disagree string) {
	got := checkDecision(cr, headers)
	// A provider check names (cr.Custom) decides on its own configuration, which check
	// cannot see (e.g. a provider that is not sent the allow header): its denial is the
	// provider's answer, not RBAC's.
	if envoy == decideProvider && (got == decideProvider || len(cr.Custom) > 0) {
		return "the CUSTOM provider denied (ext_authz 403), not RBAC", ""
	}
	if envoy != got {
		return "", fmt.Sprintf("Envoy: %s, check: %s (%s)", envoy, got, describeCheck(cr))
	}
	return "", ""
}

func describeCheck(cr authz.CheckResult) string {
	s := cr.Decision + " at " + cr.Proxy + fmt.Sprintf(":%d %s mTLS %s principal %q: %s", cr.Port, cr.Protocol, cr.MTLSMode, cr.Principal, cr.Reason)
	if cr.Rule != nil {
		s += " [" + cr.Rule.Policy + " " + cr.Rule.Rule + "]"
	}
	for _, c := range cr.Custom {
		s += " [custom " + c.Provider + "]"
	}
	return s
}

// replayTally counts the replayed steps.
type replayTally struct {
	total, agreed int
	disagreements []string
	skipped       map[string]int
}

func (t *replayTally) skip(reason string) {
	if t.skipped == nil {
		t.skipped = map[string]int{}
	}
	t.skipped[reason]++
}

func (t *replayTally) nSkipped() int {
	n := 0
	for _, c := range t.skipped {
		n += c
	}
	return n
}

func (t *replayTally) summary() string {
	var reasons []string
	for _, r := range slices.Sorted(maps.Keys(t.skipped)) {
		reasons = append(reasons, fmt.Sprintf("%s: %d", r, t.skipped[r]))
	}
	return fmt.Sprintf("replayed %d HTTP steps: %d agreed, %d disagreed, %d skipped (%s)",
		t.total, t.agreed, len(t.disagreements), t.nSkipped(), strings.Join(reasons, "; "))
}

func TestReplayVerdictRules(t *testing.T) {
	allow := authz.CheckResult{Decision: "ALLOW"}
	deny := authz.CheckResult{Decision: "DENY"}
	refused := authz.CheckResult{Decision: "DENY", ConnectionRefused: true}
	custom := authz.CheckResult{Decision: "ALLOW", Custom: []authz.CustomCall{{Provider: "p"}}}
	ok := map[string]string{"X-Ext-Authz": "allow"}
	for _, c := range []struct {
		name    string
		res     harness.Result
		cr      authz.CheckResult
		headers map[string]string
		skip    bool
		agree   bool
	}{
		{"200 allowed", harness.Result{Status: 200}, allow, nil, false, true},
		{"200 vs deny", harness.Result{Status: 200}, deny, nil, false, false},
		{"upstream 500 means first hop allowed", harness.Result{Status: 500, Body: "error calling http://x: 403"}, allow, nil, false, true},
		{"router 404 means allowed", harness.Result{Status: 404}, deny, nil, false, false},
		{"RBAC 403", harness.Result{Status: 403, Body: "RBAC: access denied"}, deny, nil, false, true},
		{"RBAC 403 vs allow", harness.Result{Status: 403, Body: "RBAC: access denied"}, allow, nil, false, false},
		{"refused", harness.Result{ConnectionError: true}, refused, nil, false, true},
		{"refused vs deny", harness.Result{ConnectionError: true}, deny, nil, false, false},
		{"jwt 401", harness.Result{Status: 401, Body: "Jwt issuer is not configured"}, allow, nil, true, true},
		{"jwt audience 403", harness.Result{Status: 403, Body: "Audiences in Jwt are not allowed"}, allow, nil, true, true},
		{"provider denies", harness.Result{Status: 403, Body: "denied by ext_authz\n"}, custom, nil, true, true},
		{"provider allows", harness.Result{Status: 200}, custom, ok, false, true},
		{"provider denies despite the allow header (it is not sent the header)", harness.Result{Status: 403, Body: "denied by ext_authz\n"}, custom, ok, true, true},
		{"allowed without the provider's header", harness.Result{Status: 200}, custom, nil, false, false},
		{"ext_authz 403 without CUSTOM", harness.Result{Status: 403, Body: "denied by ext_authz\n"}, allow, nil, false, false},
	} {
		envoy, skip := envoyDecision(c.res)
		var disagree string
		if skip == "" {
			skip, disagree = compareDecisions(envoy, c.cr, c.headers)
		}
		if (skip != "") != c.skip || (disagree == "") != c.agree {
			t.Errorf("%s: skip %q disagree %q, want skip=%v agree=%v", c.name, skip, disagree, c.skip, c.agree)
		}
	}
}
