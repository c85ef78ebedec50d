package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	security "istio.io/api/security/v1beta1"

	"github.com/wardenmesh/warden/e2e/scenario"
	"github.com/wardenmesh/warden/watch"
)

// verifiedClaims is the payload of the token jwt_authn verified for the request at
// workload w: a token in a location that a jwtRule applying to w reads, issued by
// that rule's issuer. It is nil when there is none. It is only used for requests
// Envoy did not answer 401, so a token found this way passed verification.
func verifiedClaims(in *watch.Input, w *watch.Workload, r *scenario.Request) map[string]any {
	query := url.Values{}
	if u, err := url.Parse(r.URL); err == nil {
		query = u.Query()
	}
	for _, ra := range in.RequestAuthentications {
		if ra.Namespace != in.RootNamespace && ra.Namespace != w.Namespace {
			continue
		}
		if len(ra.Spec.GetTargetRefs()) > 0 || !labelsSubset(ra.Spec.GetSelector().GetMatchLabels(), w.PodLabels) {
			continue
		}
		for _, rule := range ra.Spec.GetJwtRules() {
			for _, tok := range tokensRead(rule, r.Headers, query) {
				if claims := jwtPayload(tok); claims != nil && claims["iss"] == rule.GetIssuer() {
					return claims
				}
			}
		}
	}
	return nil
}

// tokensRead lists the tokens a jwtRule reads from the request: its fromHeaders
// (prefix stripped) and fromParams, or by default `Authorization: Bearer` and the
// access_token parameter.
func tokensRead(rule *security.JWTRule, headers map[string]string, query url.Values) []string {
	type loc struct{ name, prefix string }
	hs := []loc{}
	for _, h := range rule.GetFromHeaders() {
		hs = append(hs, loc{h.GetName(), h.GetPrefix()})
	}
	params := rule.GetFromParams()
	if len(hs) == 0 && len(params) == 0 && len(rule.GetFromCookies()) == 0 {
		hs, params = []loc{{"Authorization", "Bearer "}}, []string{"access_token"}
	}
	var out []string
	for _, l := range hs {
		for k, v := range headers {
			if strings.EqualFold(k, l.name) && strings.HasPrefix(v, l.prefix) {
				out = append(out, strings.TrimPrefix(v, l.prefix))
			}
		}
	}
	for _, p := range params {
		out = append(out, query[p]...)
	}
	return out
}

// jwtPayload decodes a compact JWT's payload without verifying it; nil when tok is
// not one.
func jwtPayload(tok string) map[string]any {
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil
	}
	var claims map[string]any
	if json.Unmarshal(b, &claims) != nil {
		return nil
	}
	return claims
}

// labelsSubset reports whether every selector label is in labels.
func labelsSubset(selector, labels map[string]string) bool {
	for k, v := range selector {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

func TestTokensRead(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	tok := enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{"iss":"i","sub":"alice"}`)) + ".sig"
	q := url.Values{"access_token": {"q"}, "token": {"t"}}
	hdr := map[string]string{"authorization": "Bearer " + tok, "X-Jwt": "Token x", "other": "y"}
	for _, c := range []struct {
		name string
		rule *security.JWTRule
		want []string
	}{
		{"default locations", &security.JWTRule{}, []string{tok, "q"}},
		{"fromHeaders replace the defaults", &security.JWTRule{FromHeaders: []*security.JWTHeader{{Name: "x-jwt", Prefix: "Token "}}}, []string{"x"}},
		{"fromParams replace the defaults", &security.JWTRule{FromParams: []string{"token"}}, []string{"t"}},
	} {
		if diff := cmp.Diff(c.want, tokensRead(c.rule, hdr, q)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	if got := jwtPayload(tok); got["sub"] != "alice" {
		t.Errorf("jwtPayload = %v", got)
	}
	if got := jwtPayload("not-a-jwt"); got != nil {
		t.Errorf("jwtPayload(not-a-jwt) = %v, want nil", got)
	}
}
