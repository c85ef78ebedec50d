package certs

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var webClaims = TokenClaims{Namespace: "default", ServiceAccount: "web", Pod: "web-0"}

func newTestSigner(t *testing.T) *TokenSigner {
	t.Helper()
	s, err := LoadOrCreateTokenKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenSignVerify(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	signer, err := LoadOrCreateTokenKey(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, filepath.Join(stateDir, TokenKeyFile), 0o600)

	token, err := signer.Sign(TokenClaims{Namespace: "default", ServiceAccount: "web", Pod: "web-0", Audience: "ignored"}, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	// A restart (or wardenctl) reads the same key and accepts the token.
	reloaded, err := LoadOrCreateTokenKey(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := reloaded.Verify(token, t0.Add(30*time.Minute))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if got.Namespace != "default" || got.ServiceAccount != "web" || got.Pod != "web-0" {
		t.Errorf("identity claims = %+v", got)
	}
	if got.Audience != TokenAudience {
		t.Errorf("aud = %q, want %q", got.Audience, TokenAudience)
	}
	if !got.IssuedAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("iat %v exp %v, want %v and an hour later", got.IssuedAt, got.ExpiresAt, t0)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got.ID) {
		t.Errorf("jti = %q, want 128 random bits in hex", got.ID)
	}
	other, err := signer.Sign(webClaims, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := signer.Verify(other, t0); err != nil || c.ID == got.ID {
		t.Errorf("two tokens share jti %q (err %v)", got.ID, err)
	}
	id, err := got.SPIFFEID(spiffeid.RequireTrustDomainFromString(testTD))
	if err != nil || id.String() != "spiffe://cluster.local/ns/default/sa/web" {
		t.Errorf("SPIFFEID = %v, %v", id, err)
	}
	header := decodePart(t, strings.Split(token, ".")[0])
	if header["alg"] != "ES256" {
		t.Errorf("header = %v", header)
	}
}

func TestTokenVerifyRejects(t *testing.T) {
	signer := newTestSigner(t)
	good, err := signer.Sign(webClaims, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	otherSigner := newTestSigner(t)
	fromOtherKey, err := otherSigner.Sign(webClaims, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	otherParts := strings.Split(fromOtherKey, ".")

	payload := decodePart(t, parts[1])
	payload["ns"] = "kube-system"
	tamperedPayload := parts[0] + "." + encodePart(t, payload) + "." + parts[2]

	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[10] ^= 0x01
	tamperedSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)

	claims := func(edit func(map[string]any)) map[string]any {
		p := decodePart(t, parts[1])
		edit(p)
		return p
	}
	es256 := map[string]any{"alg": "ES256"}

	tests := []struct {
		name  string
		token string
		now   time.Time
		want  string
	}{
		{"tampered payload", tamperedPayload, t0, "bad signature"},
		{"tampered signature", tamperedSig, t0, "bad signature"},
		{"expired", good, t0.Add(time.Hour + TokenLeeway + time.Second), "token expired at " + t0.Add(time.Hour).Format(time.RFC3339)},
		{"not yet issued", good, t0.Add(-TokenLeeway - time.Second), "issued in the future"},
		{"other key", fromOtherKey, t0, "another key"},
		{"other key without kid", encodePart(t, es256) + "." + otherParts[1] + "." + otherParts[2], t0, "bad signature"},
		{"alg none", encodePart(t, map[string]any{"alg": "none"}) + "." + parts[1] + ".", t0, `alg "none"`},
		{"two parts", parts[0] + "." + parts[1], t0, "malformed token"},
		{"garbage header", "!!." + parts[1] + "." + parts[2], t0, "malformed token header"},
		{"wrong aud", forgeToken(t, signer, es256, claims(func(p map[string]any) { p["aud"] = "kubernetes" })), t0, `audience is "kubernetes"`},
		{"no pod", forgeToken(t, signer, es256, claims(func(p map[string]any) { delete(p, "pod") })), t0, "no pod claim"},
		{"no exp", forgeToken(t, signer, es256, claims(func(p map[string]any) { delete(p, "exp") })), t0, "no exp claim"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := signer.Verify(tc.token, tc.now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestTokenLeeway(t *testing.T) {
	signer := newTestSigner(t)
	token, err := signer.Sign(webClaims, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, now := range []time.Time{t0.Add(time.Hour + TokenLeeway - time.Second), t0.Add(-TokenLeeway + time.Second)} {
		if _, err := signer.Verify(token, now); err != nil {
			t.Errorf("at %v (within leeway): %v", now, err)
		}
	}
}

func TestTokenSignRejectsIncompleteClaims(t *testing.T) {
	signer := newTestSigner(t)
	for _, c := range []TokenClaims{
		{ServiceAccount: "web", Pod: "p"},
		{Namespace: "default", Pod: "p"},
		{Namespace: "default", ServiceAccount: "web"},
	} {
		if _, err := signer.Sign(c, time.Hour, t0); err == nil {
			t.Errorf("Sign(%+v) succeeded", c)
		}
	}
	if _, err := signer.Sign(webClaims, 0, t0); err == nil {
		t.Error("Sign with zero ttl succeeded")
	}
}

func TestLoadOrCreateTokenKeyConcurrent(t *testing.T) {
	stateDir := t.TempDir()
	const n = 8
	kids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			s, err := LoadOrCreateTokenKey(stateDir)
			if err == nil {
				kids[i] = s.KeyID()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if kids[i] != kids[0] {
			t.Fatalf("concurrent creators ended with different keys: %v", kids)
		}
	}
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("state dir holds %d entries, want only %s (temporary files left?)", len(entries), TokenKeyFile)
	}
}

func TestLoadOrCreateTokenKeyRejectsBadFile(t *testing.T) {
	stateDir := t.TempDir()
	writeTestFile(t, filepath.Join(stateDir, TokenKeyFile), []byte("junk"))
	_, err := LoadOrCreateTokenKey(stateDir)
	if err == nil || !strings.Contains(err.Error(), TokenKeyFile) {
		t.Fatalf("err = %v, want it to name %s", err, TokenKeyFile)
	}
}

func decodePart(t *testing.T, part string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encodePart(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// forgeToken signs arbitrary header and payload with s's key, to reach the
// checks behind the signature.
func forgeToken(t *testing.T, s *TokenSigner, header, payload map[string]any) string {
	t.Helper()
	signed := encodePart(t, header) + "." + encodePart(t, payload)
	digest := sha256.Sum256([]byte(signed))
	r, sv, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}
