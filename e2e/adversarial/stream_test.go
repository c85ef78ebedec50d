package adversarial

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/translate"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/xds"
)

var allTypes = []string{resource.ClusterType, resource.ListenerType, resource.EndpointType, resource.RouteType, resource.SecretType}

// subscribeOwn subscribes to SDS (default + ROOTCA) and CDS/LDS as ident and waits
// for the first response.
func subscribeOwn(t *testing.T, cl *client, ident xds.Identity) {
	t.Helper()
	if err := cl.request(node(ident, nil, nil), resource.SecretType, translate.SecretDefault, translate.SecretRootCA); err != nil {
		t.Fatal(err)
	}
	if err := cl.waitResponse(15 * time.Second); err != nil {
		t.Fatalf("%s: first response: %v", ident, err)
	}
	for _, typ := range []string{resource.ClusterType, resource.ListenerType} {
		if err := cl.request(nil, typ); err != nil {
			t.Fatal(err)
		}
		if err := cl.waitResponse(15 * time.Second); err != nil {
			t.Fatalf("%s: %s: %v", ident, typ, err)
		}
	}
}

// TestTokensThatProveNothingGetNothing: streams whose credential is missing, garbage,
// signed by another key, expired, unsigned (alg none) or signed with a symmetric key
// derived from public data are closed Unauthenticated before anything is served,
// counted and logged.
func TestTokensThatProveNothingGetNothing(t *testing.T) {
	w := startWardend(t, mesh)
	other := startWardend(t, mesh) // another control plane's key
	valid := w.token(t, web, time.Hour)
	parts := strings.Split(valid, ".")
	b64 := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	payload := map[string]any{"ns": "shop", "sa": "admin", "pod": "admin-0", "aud": certs.TokenAudience,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	foreign, err := certs.LoadOrCreateTokenKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	foreignTok, err := foreign.Sign(certs.TokenClaims{Namespace: "shop", ServiceAccount: "admin", Pod: "admin-0"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"no token":                  "",
		"garbage":                   "not-a-token",
		"empty bearer":              " ",
		"two parts":                 parts[0] + "." + parts[1],
		"another control plane":     other.token(t, admin, time.Hour),
		"expired":                   expiredToken(t, w),
		"unknown key, no kid":       stripKid(t, foreignTok),
		"alg none":                  b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(payload) + ".",
		"alg none, our kid":         b64(map[string]string{"alg": "none", "kid": w.signer.KeyID()}) + "." + b64(payload) + ".",
		"HS256 with our kid":        b64(map[string]string{"alg": "HS256", "kid": w.signer.KeyID()}) + "." + b64(payload) + "." + parts[2],
		"web's signature on admin":  parts[0] + "." + b64(payload) + "." + parts[2],
		"signature bit flipped":     parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"kubernetes-looking token":  "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2hvcDphZG1pbiJ9.c2ln",
		"huge token":                strings.Repeat("A", 60<<10),
		"valid token, Basic scheme": rawHeader + "Basic " + valid,
	}
	before := w.metric(t, "warden_xds_auth_failures_total")
	c := w.conn(t)
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			cl := w.open(t, c, tok, false)
			_ = cl.request(node(admin, nil, nil), resource.SecretType, translate.SecretDefault)
			err := cl.waitClosed(15 * time.Second)
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("stream ended with %v, want Unauthenticated", err)
			}
			if got := cl.servedIdentities(t); len(got) > 0 || len(cl.served) > 0 {
				t.Fatalf("served %d resources (%v) to an unauthenticated stream", len(cl.served), got)
			}
		})
	}
	if after := w.metric(t, "warden_xds_auth_failures_total"); after-before < float64(len(cases)) {
		t.Errorf("warden_xds_auth_failures_total rose by %v, want at least %d", after-before, len(cases))
	}
	if !strings.Contains(w.log(t), "could not prove its identity") {
		t.Errorf("no auth failure was logged")
	}
	if strings.Contains(w.log(t), parts[2]) {
		t.Errorf("wardend logged a token signature")
	}
}

// expiredToken signs admin's token as if issued an hour ago, valid for a minute.
func expiredToken(t *testing.T, w *wardend) string {
	t.Helper()
	past := time.Now().Add(-time.Hour)
	tok, err := w.signer.Sign(certs.TokenClaims{Namespace: "shop", ServiceAccount: "admin", Pod: "admin-0"}, time.Minute, past)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

// TestNodeSwitchOnLaterRequest: a stream that proved web and then names admin's node
// on a later request, of any type, over SotW and delta, is closed PermissionDenied,
// never receives admin's certificate, key or listeners, and the attempt is logged once
// with both identities and counted.
func TestNodeSwitchOnLaterRequest(t *testing.T) {
	w := startWardend(t, mesh)
	c := w.conn(t)
	for _, delta := range []bool{false, true} {
		for _, typ := range allTypes {
			t.Run(proto(delta)+"/"+short(typ), func(t *testing.T) {
				before := w.metric(t, "warden_xds_identity_violations_total")
				cl := w.open(t, c, w.token(t, web, time.Hour), delta)
				subscribeOwn(t, cl, web)
				names := []string(nil)
				if typ == resource.SecretType {
					names = []string{translate.SecretDefault}
				}
				if err := cl.request(node(admin, nil, nil), typ, names...); err != nil {
					t.Fatal(err)
				}
				err := cl.waitClosed(15 * time.Second)
				if status.Code(err) != codes.PermissionDenied {
					t.Fatalf("stream ended with %v, want PermissionDenied", err)
				}
				ids := cl.servedIdentities(t)
				for id := range ids {
					if strings.Contains(id, "sa/admin") {
						t.Fatalf("admin's credential was served to web's stream: %v", ids)
					}
				}
				if !ids[spiffe(web)] {
					t.Fatalf("web's own certificate was not served first (%v): the test proves nothing", ids)
				}
				for lname := range cl.listeners(t) {
					if strings.Contains(lname, "9090") {
						t.Fatalf("admin's inbound port appeared in web's listeners: %s", lname)
					}
				}
				if after := w.metric(t, "warden_xds_identity_violations_total"); after != before+1 {
					t.Errorf("identity violations %v -> %v, want +1", before, after)
				}
			})
		}
	}
	log := w.log(t)
	// Each attempt is logged once, and one source's attempts at most a burst at a time
	// (the metric above counted every one).
	if n := strings.Count(log, "claimed another identity"); n < 1 || n > 5 {
		t.Errorf("%d violations from one address logged %d times, want 1..5 (rate-limited per source)", 2*len(allTypes), n)
	}
	if !strings.Contains(log, `proven="shop/web pod web-0"`) || !strings.Contains(log, `claimedNode=admin-0.shop`) {
		t.Errorf("the violation log line must name both identities:\n%s", tail(log, 5))
	}
}

func proto(delta bool) string {
	if delta {
		return "delta"
	}
	return "sotw"
}

func short(typeURL string) string {
	return typeURL[strings.LastIndex(typeURL, ".")+1:]
}

// TestMetadataClaimsOnLaterRequests: a later request with the stream's own node id
// but another namespace or service account in its metadata is refused too.
func TestMetadataClaimsOnLaterRequests(t *testing.T) {
	w := startWardend(t, mesh)
	cl := w.open(t, w.conn(t), w.token(t, web, time.Hour), false)
	subscribeOwn(t, cl, web)
	n := node(web, nil, nil)
	n.Metadata.Fields[xds.MetaServiceAccount] = structpb.NewStringValue("admin")
	if err := cl.request(n, resource.ListenerType); err != nil {
		t.Fatal(err)
	}
	if err := cl.waitClosed(15 * time.Second); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stream ended with %v, want PermissionDenied", err)
	}
}

// stripKid re-encodes a token's header without its key id (the signature no longer
// matches the header either: both must be refused).
func stripKid(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`))
	return h + "." + parts[1] + "." + parts[2]
}
