//go:build ignore

// gen writes the key, JWKS and tokens of the JWT claim routing scenario
// (jwt-claim-routing.yaml): `go run gen.go` in this directory. The RSA key is
// created once (key.pem) and reused, so regenerating tokens keeps the JWKS.
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log"
	"math/big"
	"os"
)

const issuer = "https://claims.warden.test"

var tokens = map[string]map[string]any{
	// An engineer who is an admin of the platform team.
	"engineer.jwt": {"sub": "bob", "group": "engineering", "roles": []string{"reader", "deployer"},
		"org": map[string]any{"role": "admin", "team.name": "platform"}},
	// A sales viewer.
	"sales.jwt": {"sub": "carol", "group": "sales", "roles": []string{"reader"},
		"org": map[string]any{"role": "viewer", "team.name": "emea"}},
}

func main() {
	key := loadOrCreateKey("key.pem")
	b64 := base64.RawURLEncoding.EncodeToString
	jwks := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "warden-claims-key",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}}
	write("jwks.json", mustJSON(jwks))
	header := b64(mustJSON(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "warden-claims-key"}))
	for name, claims := range tokens {
		claims["iss"], claims["iat"], claims["exp"] = issuer, 1700000000, 4900000000
		signing := header + "." + b64(mustJSON(claims))
		sum := sha256.Sum256([]byte(signing))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			log.Fatal(err)
		}
		write(name, []byte(signing+"."+b64(sig)))
	}
}

func loadOrCreateKey(path string) *rsa.PrivateKey {
	if data, err := os.ReadFile(path); err == nil {
		blk, _ := pem.Decode(data)
		k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
		if err != nil {
			log.Fatal(err)
		}
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	write(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	return k
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

func write(path string, data []byte) {
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}
