package jwks

import (
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Usable parses data as a JSON Web Key Set and returns it re-encoded with only the
// keys Envoy can verify tokens with. Keys of unknown types or with broken fields are
// dropped, so that one bad key cannot make Envoy reject the whole filter; skipped
// says how many were. An error means no usable key is left: the key set must not be
// given to Envoy at all.
func Usable(data string) (keySet string, skipped int, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal([]byte(data), &doc); err != nil {
		return "", 0, fmt.Errorf("parse JWKS: %w", err)
	}
	if doc.Keys == nil {
		return "", 0, errors.New("parse JWKS: no \"keys\" array")
	}
	var good []json.RawMessage
	var firstErr error
	for i, raw := range doc.Keys {
		if err := checkKey(raw); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("key %d: %w", i, err)
			}
			continue
		}
		good = append(good, raw)
	}
	if len(good) == 0 {
		if firstErr == nil {
			firstErr = errors.New("the key set is empty")
		}
		return "", len(doc.Keys), fmt.Errorf("JWKS has no usable key: %w", firstErr)
	}
	out, err := json.Marshal(struct {
		Keys []json.RawMessage `json:"keys"`
	}{good})
	if err != nil {
		return "", 0, fmt.Errorf("encode JWKS: %w", err)
	}
	return string(out), len(doc.Keys) - len(good), nil
}

// jwk holds the fields of a JSON Web Key that decide whether it is usable.
type jwk struct {
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	K   string `json:"k"`
}

func checkKey(raw json.RawMessage) error {
	var k jwk
	if err := json.Unmarshal(raw, &k); err != nil {
		return fmt.Errorf("parse key: %w", err)
	}
	switch k.Kty {
	case "RSA":
		if err := checkAlg(k.Alg, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"); err != nil {
			return err
		}
		if _, err := field("n", k.N); err != nil {
			return err
		}
		_, err := field("e", k.E)
		return err
	case "EC":
		return checkEC(k)
	case "OKP":
		if k.Crv != "Ed25519" {
			return fmt.Errorf("OKP curve %q is not supported (want Ed25519)", k.Crv)
		}
		if err := checkAlg(k.Alg, "EdDSA"); err != nil {
			return err
		}
		x, err := field("x", k.X)
		if err == nil && len(x) != 32 {
			err = fmt.Errorf("x is %d bytes, want 32", len(x))
		}
		return err
	case "oct":
		if err := checkAlg(k.Alg, "HS256", "HS384", "HS512"); err != nil {
			return err
		}
		_, err := field("k", k.K)
		return err
	case "":
		return errors.New("kty is missing")
	default:
		return fmt.Errorf("kty %q is not supported", k.Kty)
	}
}

func checkEC(k jwk) error {
	curves := map[string]struct {
		curve ecdh.Curve
		alg   string
		size  int
	}{
		"P-256": {ecdh.P256(), "ES256", 32},
		"P-384": {ecdh.P384(), "ES384", 48},
		"P-521": {ecdh.P521(), "ES512", 66},
	}
	c, ok := curves[k.Crv]
	if !ok {
		return fmt.Errorf("EC curve %q is not supported", k.Crv)
	}
	if err := checkAlg(k.Alg, c.alg); err != nil {
		return err
	}
	x, err := field("x", k.X)
	if err != nil {
		return err
	}
	y, err := field("y", k.Y)
	if err != nil {
		return err
	}
	if len(x) != c.size || len(y) != c.size {
		return fmt.Errorf("x and y must be %d bytes for %s", c.size, k.Crv)
	}
	point := append(append([]byte{4}, x...), y...)
	if _, err := c.curve.NewPublicKey(point); err != nil {
		return fmt.Errorf("EC point: %w", err)
	}
	return nil
}

// checkAlg accepts an absent alg or one of want.
func checkAlg(alg string, want ...string) error {
	if alg == "" {
		return nil
	}
	for _, w := range want {
		if alg == w {
			return nil
		}
	}
	return fmt.Errorf("alg %q does not fit the key type (want one of %s)", alg, strings.Join(want, ", "))
}

// field decodes a base64url key field, padded or not.
func field(name, v string) ([]byte, error) {
	if v == "" {
		return nil, fmt.Errorf("%s is missing", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil {
		return nil, fmt.Errorf("%s is not base64url: %w", name, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", name)
	}
	return b, nil
}
