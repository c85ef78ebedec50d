package certs

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"k8s.io/apimachinery/pkg/util/validation"
)

// TokenAudience is the audience of bootstrap tokens.
const TokenAudience = "warden-xds"

// TokenLeeway is the clock skew tolerated when checking exp and iat.
const TokenLeeway = 30 * time.Second

const tokenAlg = "ES256"

// TokenClaims is what a bootstrap token binds a proxy to.
type TokenClaims struct {
	Namespace      string
	ServiceAccount string
	Pod            string
	Audience       string
	IssuedAt       time.Time
	ExpiresAt      time.Time
	ID             string // unique per token (jti)
	// Labels and IPs are the pod's labels and addresses as the token's signer vouches
	// for them (directory mode has no Pod objects to read them from). wardend uses them
	// only when the mesh input has no Pod object for the pod; a proxy's own node
	// metadata never decides them.
	Labels map[string]string
	IPs    []string
}

// SPIFFEID is the workload identity the claims prove.
func (c TokenClaims) SPIFFEID(td spiffeid.TrustDomain) (spiffeid.ID, error) {
	return WorkloadID(td, c.Namespace, c.ServiceAccount)
}

type tokenHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid,omitempty"`
}

type tokenPayload struct {
	Namespace      string            `json:"ns"`
	ServiceAccount string            `json:"sa"`
	Pod            string            `json:"pod"`
	Audience       string            `json:"aud"`
	IssuedAt       int64             `json:"iat"`
	ExpiresAt      int64             `json:"exp"`
	ID             string            `json:"jti"`
	Labels         map[string]string `json:"labels,omitempty"`
	IPs            []string          `json:"ips,omitempty"`
}

// TokenSigner signs and verifies bootstrap tokens with one ECDSA P-256 key:
// compact JWS (header.payload.signature, base64url) with alg ES256.
type TokenSigner struct {
	key *ecdsa.PrivateKey
	kid string
}

// KeyID identifies the signing key (a hash of its public key); tokens carry
// it so that one signed by another state directory is named as such.
func (s *TokenSigner) KeyID() string { return s.kid }

// Sign returns a token for c's namespace, service account and pod, valid
// from now for ttl. Audience, times and ID are set here; any in c are
// ignored.
func (s *TokenSigner) Sign(c TokenClaims, ttl time.Duration, now time.Time) (string, error) {
	if err := checkIdentityClaims(c); err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("sign token: ttl %s must be positive", ttl)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("sign token: generate id: %w", err)
	}
	header, err := json.Marshal(tokenHeader{Alg: tokenAlg, Typ: "JWT", Kid: s.kid})
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	payload, err := json.Marshal(tokenPayload{
		Namespace:      c.Namespace,
		ServiceAccount: c.ServiceAccount,
		Pod:            c.Pod,
		Audience:       TokenAudience,
		IssuedAt:       now.Unix(),
		ExpiresAt:      now.Add(ttl).Unix(),
		ID:             hex.EncodeToString(jti[:]),
		Labels:         c.Labels,
		IPs:            c.IPs,
	})
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	signed := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(signed))
	r, sv, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return signed + "." + b64(sig), nil
}

// Verify checks token's algorithm, key, signature, audience, expiry and
// identity claims at time now and returns its claims.
func (s *TokenSigner) Verify(token string, now time.Time) (TokenClaims, error) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return TokenClaims{}, fmt.Errorf("malformed token: %d dot-separated parts, want 3", len(parts))
	}
	var h tokenHeader
	if err := decodeJSONPart(parts[0], &h); err != nil {
		return TokenClaims{}, fmt.Errorf("malformed token header: %w", err)
	}
	if h.Alg != tokenAlg {
		return TokenClaims{}, fmt.Errorf("token alg %q is not supported, want %s", h.Alg, tokenAlg)
	}
	if h.Kid != "" && h.Kid != s.kid {
		return TokenClaims{}, fmt.Errorf("token was signed by another key (kid %s, this key is %s)", h.Kid, s.kid)
	}
	if err := s.verifySignature(parts[0]+"."+parts[1], parts[2]); err != nil {
		return TokenClaims{}, err
	}
	var p tokenPayload
	if err := decodeJSONPart(parts[1], &p); err != nil {
		return TokenClaims{}, fmt.Errorf("malformed token payload: %w", err)
	}
	c := TokenClaims{
		Namespace:      p.Namespace,
		ServiceAccount: p.ServiceAccount,
		Pod:            p.Pod,
		Audience:       p.Audience,
		IssuedAt:       time.Unix(p.IssuedAt, 0).UTC(),
		ExpiresAt:      time.Unix(p.ExpiresAt, 0).UTC(),
		ID:             p.ID,
		Labels:         p.Labels,
		IPs:            p.IPs,
	}
	if err := checkTokenClaims(c, p, now); err != nil {
		return TokenClaims{}, err
	}
	return c, nil
}

func (s *TokenSigner) verifySignature(signed, sigPart string) error {
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sigPart)
	if err != nil {
		return fmt.Errorf("bad signature: %w", err)
	}
	if len(sig) != 64 {
		return fmt.Errorf("bad signature: %d bytes, want 64", len(sig))
	}
	digest := sha256.Sum256([]byte(signed))
	r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(&s.key.PublicKey, digest[:], r, sv) {
		return errors.New("bad signature")
	}
	return nil
}

func checkTokenClaims(c TokenClaims, p tokenPayload, now time.Time) error {
	if c.Audience != TokenAudience {
		return fmt.Errorf("token audience is %q, want %q", c.Audience, TokenAudience)
	}
	if p.ExpiresAt == 0 {
		return errors.New("token has no exp claim")
	}
	if now.After(c.ExpiresAt.Add(TokenLeeway)) {
		return fmt.Errorf("token expired at %s", c.ExpiresAt.Format(time.RFC3339))
	}
	if c.IssuedAt.After(now.Add(TokenLeeway)) {
		return fmt.Errorf("token issued in the future, at %s", c.IssuedAt.Format(time.RFC3339))
	}
	return checkIdentityClaims(c)
}

func checkIdentityClaims(c TokenClaims) error {
	for _, f := range []struct{ name, value string }{
		{"ns", c.Namespace}, {"sa", c.ServiceAccount}, {"pod", c.Pod},
	} {
		if f.value == "" {
			return fmt.Errorf("token has no %s claim", f.name)
		}
	}
	// As Kubernetes names them: a namespace has no dots, so "<pod>.<namespace>" (the
	// node id) names exactly one pod.
	if errs := validation.IsDNS1123Label(c.Namespace); len(errs) > 0 {
		return fmt.Errorf("token ns claim %q: %s", c.Namespace, strings.Join(errs, "; "))
	}
	for _, f := range []struct{ name, value string }{{"sa", c.ServiceAccount}, {"pod", c.Pod}} {
		if errs := validation.IsDNS1123Subdomain(f.value); len(errs) > 0 {
			return fmt.Errorf("token %s claim %q: %s", f.name, f.value, strings.Join(errs, "; "))
		}
	}
	return nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeJSONPart(part string, v any) error {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(part)
	if err != nil {
		return fmt.Errorf("base64url: %w", err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}
