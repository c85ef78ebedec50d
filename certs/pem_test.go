package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"testing"
	"time"
)

func TestParsePrivateKeyPEMFormats(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := encodeKeyPEM(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	params := pem.EncodeToMemory(&pem.Block{Type: pemECParameters, Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	for name, data := range map[string][]byte{
		"pkcs8":             pkcs8,
		"sec1":              ecKeyPEM(t, ecKey),
		"sec1 after params": append(params, ecKeyPEM(t, ecKey)...),
	} {
		key, err := parsePrivateKeyPEM(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !publicKeysEqual(key.Public(), ecKey.Public()) {
			t.Errorf("%s: parsed a different key", name)
		}
	}
	for name, data := range map[string][]byte{
		"empty":       nil,
		"certificate": pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: []byte{1}}),
		"corrupt":     pem.EncodeToMemory(&pem.Block{Type: pemPKCS8Key, Bytes: []byte{1, 2, 3}}),
	} {
		if _, err := parsePrivateKeyPEM(data); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// Operators often plug in RSA intermediates (PKCS#1 keys); leaves stay
// ECDSA P-256.
func TestPluggedRSAIntermediate(t *testing.T) {
	clock := newFakeClock(t0)
	root := newTestCA(t, "root", nil, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := *root.cert
	tmpl.Subject.CommonName = "rsa intermediate"
	inter := signTestCert(t, &tmpl, rsaKey, &root)

	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, PluggedCertFile), inter.pem())
	writeTestFile(t, filepath.Join(dir, PluggedKeyFile), pem.EncodeToMemory(&pem.Block{Type: pemRSAKey, Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	writeTestFile(t, filepath.Join(dir, PluggedRootFile), root.pem())
	writeTestFile(t, filepath.Join(dir, PluggedChainFile), inter.pem())
	ca, err := LoadPluggedCA(dir, testTD, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	id := mustID(t, "a", "b")
	svid, err := ca.SignWorkload(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if svid.Leaf.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("leaf signed with %v, want SHA256-RSA by the intermediate", svid.Leaf.SignatureAlgorithm)
	}
	if err := ValidateSVID(svid.CertChainPEM, svid.KeyPEM, ca.Bundle(), id, clock.Now()); err != nil {
		t.Fatal(err)
	}
}
