package certs

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"k8s.io/apimachinery/pkg/util/validation"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The fuzz targets use fixed keys so that the committed seeds, signed once with
// fuzzKeyPEM, verify in every run and in every fuzzing worker.
const (
	fuzzKeyPEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgY4vbk+ohG6xufxZE
n6m8F3M8mLtDugHAXaUu8RHNOf2hRANCAARnhOR2z8RJ2/Ll1ajn46fWdTxx/rLx
sznXMCpcKdNy1eOj9OPnXhHtFa2IGLXOptvgp0u30OfuNMadTz28A/BY
-----END PRIVATE KEY-----
`
	fuzzForeignKeyPEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYdw0+PLn3figHjiP
qV1ehIKUA5Q0YTuedusc6C4CdoqhRANCAASgJ0iP0RKlrd0KbvVnRtSWkfuiLfvs
9b0M3svVLEQgFANK+ioM97ikJPdWAWcNpi+bYCRJe8cGnUbANaWhpqOQ
-----END PRIVATE KEY-----
`
)

// fuzzNow is when the seed tokens were signed (valid for an hour).
var fuzzNow = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// fuzzSigned are tokens fuzzKeyPEM signed at fuzzNow with their claims: the only
// tokens FuzzTokenVerify may ever see verify.
var fuzzSigned = []struct {
	token                   string
	namespace, account, pod string
}{
	{"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Ijc2MjI4NzhjMTllZjc1ZDMifQ.eyJucyI6ImRlZmF1bHQiLCJzYSI6IndlYiIsInBvZCI6IndlYi0wIiwiYXVkIjoid2FyZGVuLXhkcyIsImlhdCI6MTkzMDM2NzE2NywiZXhwIjoxOTMwMzcwNzY3LCJqdGkiOiIxZDYxNTVhNDM2N2E2MmUzZTUxNmU0YzQyZTBlNjYyMCJ9.dZi5LwyiiH5OCa5qXQ7N1Z18JiBU6fUxHGYlhpbIdTIwTfV8vSnk2JlrPPxasthY8UYCR5tNv1z3fOuGZ0U0_Q",
		"default", "web", "web-0"},
	{"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Ijc2MjI4NzhjMTllZjc1ZDMifQ.eyJucyI6ImlzdGlvaW5hY3Rpb24iLCJzYSI6IndlYmFwcCIsInBvZCI6IndlYmFwcC03ZDhmOWMteDJrNHEiLCJhdWQiOiJ3YXJkZW4teGRzIiwiaWF0IjoxOTMwMzY3MTY3LCJleHAiOjE5MzAzNzA3NjcsImp0aSI6ImUzNDIzYzdiMWVhZWVmMzFiMTBkOGU4M2ZhYjEzNTdlIn0.S-H-ns68qcKGwSt5D55ZcxIFibSEvpSyALFfMtgC8srG0TdXxS6ItToU_mAtB0QTwbewVoDary-q8diK-zPHxA",
		"istioinaction", "webapp", "webapp-7d8f9c-x2k4q"},
}

// fuzzForeignSigned were signed at fuzzNow by fuzzForeignKeyPEM.
var fuzzForeignSigned = []string{
	"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImFlNzA2OTNmMGFjMzI2YjkifQ.eyJucyI6ImRlZmF1bHQiLCJzYSI6IndlYiIsInBvZCI6IndlYi0wIiwiYXVkIjoid2FyZGVuLXhkcyIsImlhdCI6MTkzMDM2NzE2NywiZXhwIjoxOTMwMzcwNzY3LCJqdGkiOiI1NGJmZmI0MTFjNmIzNDc3NzU4MzBiMzdiNjU3ZWVjZCJ9.6JLEuRt859Ax0hR7XZBNeD-BdTw94x3B1edf_0FSIhvaHVYXCjU0Qu86dlywgXPdLHqTdqaQzlXXqpFHmiXrTg",
	"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImFlNzA2OTNmMGFjMzI2YjkifQ.eyJucyI6ImlzdGlvaW5hY3Rpb24iLCJzYSI6IndlYmFwcCIsInBvZCI6IndlYmFwcC03ZDhmOWMteDJrNHEiLCJhdWQiOiJ3YXJkZW4teGRzIiwiaWF0IjoxOTMwMzY3MTY3LCJleHAiOjE5MzAzNzA3NjcsImp0aSI6Ijc3MjkzYmQ3ZGQyYjM2OGJhMjBjZTkwMTI1ZDAyOGJmIn0.fe4pBuancmoJfcEcbcTSszIAawAJk6dBL-CROnYHUq9DFSXjJwvwO68P3OeIkAL50pUOuB_J6Fumgf4_hey5Mg",
}

func fuzzSigners(f *testing.F) (key, foreign *TokenSigner) {
	f.Helper()
	key, err := tokenSignerFromPEM([]byte(fuzzKeyPEM))
	if err != nil {
		f.Fatal(err)
	}
	foreign, err = tokenSignerFromPEM([]byte(fuzzForeignKeyPEM))
	if err != nil {
		f.Fatal(err)
	}
	return key, foreign
}

// signParts signs header and payload JSON as Sign does (ES256 over the base64url
// parts), whatever the header says: a token whose only fault is its header.
func signParts(t *testing.T, key *ecdsa.PrivateKey, header, payload []byte) string {
	t.Helper()
	signed := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + b64(sig)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzTokenVerify feeds arbitrary strings to Verify. Nothing verifies unless its
// signed part (header.payload) is one fuzzKeyPEM signed, and then it yields exactly
// that token's claims; the foreign key never accepts what the key accepts.
func FuzzTokenVerify(f *testing.F) {
	key, foreign := fuzzSigners(f)
	signedClaims := map[string]int{}
	for i, s := range fuzzSigned {
		parts := strings.Split(s.token, ".")
		signedClaims[parts[0]+"."+parts[1]] = i
		f.Add(s.token)
		f.Add(" " + s.token + "\n")
		f.Add(s.token + ".")
		for _, n := range []int{0, 1, len(parts[0]), len(parts[0]) + 1, len(s.token) - 2, len(s.token) - 1} {
			f.Add(s.token[:n]) // truncated
		}
		// alg none, with and without the signature; another algorithm; a foreign kid.
		payload := parts[1]
		for _, h := range []string{
			`{"alg":"none"}`, `{"alg":"none","typ":"JWT"}`, `{"alg":"NONE","kid":"` + key.KeyID() + `"}`,
			`{"alg":"HS256","typ":"JWT"}`, `{"alg":"RS256","kid":"` + key.KeyID() + `"}`, `{"alg":"es256"}`,
			`{"alg":"ES256","kid":"` + foreign.KeyID() + `"}`, `{"alg":"ES256"}`, `{"alg":"ES256","alg":"none"}`,
			`{"alg":["ES256"]}`, `null`, `[]`,
		} {
			f.Add(b64([]byte(h)) + "." + payload + ".")
			f.Add(b64([]byte(h)) + "." + payload + "." + parts[2])
		}
	}
	for _, tok := range fuzzForeignSigned {
		f.Add(tok)
	}
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add("a.b.c.d")

	f.Fuzz(func(t *testing.T, token string) {
		c, err := key.Verify(token, fuzzNow)
		c2, err2 := key.Verify(token, fuzzNow)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(c, c2) {
			t.Fatalf("Verify is not deterministic: %+v, %v then %+v, %v", c, err, c2, err2)
		}
		fc, ferr := foreign.Verify(token, fuzzNow)
		if err == nil && ferr == nil {
			t.Fatalf("both keys accept %q", token)
		}
		if ferr != nil && !reflect.DeepEqual(fc, TokenClaims{}) {
			t.Fatalf("foreign Verify failed (%v) but returned claims %+v", ferr, fc)
		}
		if err != nil {
			if !reflect.DeepEqual(c, TokenClaims{}) {
				t.Fatalf("Verify failed (%v) but returned claims %+v", err, c)
			}
			return
		}
		parts := strings.Split(strings.TrimSpace(token), ".")
		i, ok := signedClaims[parts[0]+"."+parts[1]]
		if !ok {
			t.Fatalf("Verify accepted a token the key never signed: %q -> %+v", token, c)
		}
		want := fuzzSigned[i]
		if c.Namespace != want.namespace || c.ServiceAccount != want.account || c.Pod != want.pod ||
			c.Audience != TokenAudience || !c.IssuedAt.Equal(fuzzNow) || !c.ExpiresAt.Equal(fuzzNow.Add(time.Hour)) {
			t.Fatalf("claims %+v, want those of seed %d", c, i)
		}
		var h tokenHeader
		if err := decodeJSONPart(parts[0], &h); err != nil || h.Alg != tokenAlg || (h.Kid != "" && h.Kid != key.KeyID()) {
			t.Fatalf("accepted header %+v (%v)", h, err)
		}
	})
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// FuzzTokenSignVerify signs fuzzed claims and checks the round trip, expiry, the
// foreign key, a one-byte mutation, and a header with another alg or kid.
func FuzzTokenSignVerify(f *testing.F) {
	key, foreign := fuzzSigners(f)
	f.Add("default", "web", "web-0", int64(time.Hour), uint(10), byte('x'), "ES256", "")
	f.Add("istioinaction", "webapp", "webapp-7d8f9c-x2k4q", int64(24*time.Hour), uint(200), byte('.'), "none", "")
	f.Add("ns", "sa", "pod", int64(time.Second), uint(1<<20), byte(' '), "HS256", key.KeyID())
	f.Add("ns", "sa", "pod", int64(1), uint(0), byte('e'), "ES256", foreign.KeyID())
	f.Add("", "sa", "pod", int64(time.Hour), uint(5), byte(0), "ES256", "")
	f.Add("ns", "sa", "pod", int64(0), uint(5), byte(0), "ES256", "")
	f.Add("ns", "sa", "pod", int64(-time.Hour), uint(5), byte(0), "ES256", "")
	f.Add("n\"s", "s\\a", "p\u00f6d", int64(1<<62), uint(7), byte('A'), "ES256", key.KeyID())

	f.Fuzz(func(t *testing.T, ns, sa, pod string, ttlNanos int64, pos uint, b byte, alg, kid string) {
		ttl := time.Duration(ttlNanos)
		tok, err := key.Sign(TokenClaims{Namespace: ns, ServiceAccount: sa, Pod: pod, Audience: "ignored"}, ttl, fuzzNow)
		if !kubeNames(ns, sa, pod) || ttl <= 0 {
			if err == nil {
				t.Fatalf("Sign accepted ns %q sa %q pod %q ttl %s", ns, sa, pod, ttl)
			}
			return
		}
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		c, err := key.Verify(tok, fuzzNow)
		if err != nil {
			t.Fatalf("Verify of a fresh token: %v", err)
		}
		// Claims travel as JSON, which turns invalid UTF-8 into U+FFFD: compare with
		// what JSON makes of each string.
		jsonStr := func(s string) string {
			var out string
			if err := json.Unmarshal(mustJSON(t, s), &out); err != nil {
				t.Fatal(err)
			}
			return out
		}
		exp := time.Unix(fuzzNow.Add(ttl).Unix(), 0).UTC()
		if c.Namespace != jsonStr(ns) || c.ServiceAccount != jsonStr(sa) || c.Pod != jsonStr(pod) ||
			c.Audience != TokenAudience || !c.IssuedAt.Equal(fuzzNow) || !c.ExpiresAt.Equal(exp) || !hex32.MatchString(c.ID) {
			t.Fatalf("round trip of ns %q sa %q pod %q ttl %s: %+v", ns, sa, pod, ttl, c)
		}
		if _, err := key.Verify(tok, exp.Add(TokenLeeway+time.Second)); err == nil {
			t.Fatalf("token valid after exp %s + leeway", exp)
		}
		if _, err := key.Verify(tok, fuzzNow.Add(-TokenLeeway-time.Second)); err == nil {
			t.Fatal("token valid before iat - leeway")
		}
		if _, err := foreign.Verify(tok, fuzzNow); err == nil {
			t.Fatal("foreign key accepts the token")
		}

		// One byte changed anywhere.
		i := int(pos % uint(len(tok)))
		if tok[i] != b {
			mutated := tok[:i] + string([]byte{b}) + tok[i+1:]
			if mc, err := key.Verify(mutated, fuzzNow); err == nil {
				t.Fatalf("token with byte %d changed to %q verifies: %q -> %+v", i, b, mutated, mc)
			}
		}

		// The same payload under another header, correctly signed by the key: only
		// alg ES256 with no kid or the key's kid verifies.
		parts := strings.Split(tok, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		header := mustJSON(t, tokenHeader{Alg: alg, Typ: "JWT", Kid: kid})
		resigned := signParts(t, key.key, header, payload)
		_, err = key.Verify(resigned, fuzzNow)
		if wantOK := alg == tokenAlg && (kid == "" || kid == key.KeyID()); (err == nil) != wantOK {
			t.Fatalf("header %s signed by the key: Verify error %v, want success %v", header, err, wantOK)
		}
		// The new header with the original signature never verifies, unless the
		// header is the original one.
		swapped := b64(header) + "." + parts[1] + "." + parts[2]
		if _, err := key.Verify(swapped, fuzzNow); err == nil && b64(header) != parts[0] {
			t.Fatalf("header %s with the original signature verifies", header)
		}
		if _, err := key.Verify(b64(header)+"."+parts[1]+".", fuzzNow); err == nil {
			t.Fatalf("header %s without a signature verifies", header)
		}
	})
}

// kubeNames reports whether ns, sa and pod are names Kubernetes would accept: a
// namespace is a DNS-1123 label (no dots), service accounts and pods DNS-1123
// subdomains. Sign refuses anything else, so that "<pod>.<namespace>" is unambiguous.
func kubeNames(ns, sa, pod string) bool {
	return len(validation.IsDNS1123Label(ns)) == 0 && len(validation.IsDNS1123Subdomain(sa)) == 0 &&
		len(validation.IsDNS1123Subdomain(pod)) == 0
}
