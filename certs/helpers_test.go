package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

const testTD = "cluster.local"

// t0 is a whole second, as X.509 times are.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// testCert is a generated certificate with its key.
type testCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (c testCert) pem() []byte { return encodeCertsPEM(c.cert) }

// newTestCA makes a CA certificate signed by parent (self-signed if nil).
func newTestCA(t *testing.T, cn string, parent *testCert, notBefore, notAfter time.Time) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signTestCert(t, &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, key, parent)
}

func signTestCert(t *testing.T, tmpl *x509.Certificate, key crypto.Signer, parent *testCert) testCert {
	t.Helper()
	issuer, issuerKey := tmpl, key
	if parent != nil {
		issuer, issuerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{cert: cert, key: key}
}

// ecKeyPEM encodes key in SEC 1 form, as openssl writes it.
func ecKeyPEM(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemECKey, Bytes: der})
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustID(t *testing.T, ns, sa string) spiffeid.ID {
	t.Helper()
	id, err := WorkloadID(spiffeid.RequireTrustDomainFromString(testTD), ns, sa)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// selfSignedCA creates a fresh self-signed CA in a temporary state dir.
func selfSignedCA(t testing.TB, now func() time.Time) *CA {
	t.Helper()
	ca, err := LoadOrCreateCA(t.TempDir(), testTD, now)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
