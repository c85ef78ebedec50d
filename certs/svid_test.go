package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestSignWorkload(t *testing.T) {
	clock := newFakeClock(t0)
	ca := selfSignedCA(t, clock.Now)
	id := mustID(t, "default", "web")

	svid, err := ca.SignWorkload(id, 6*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := svid.Leaf
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cluster.local/ns/default/sa/web" {
		t.Errorf("URIs = %v, want exactly the spiffe id", leaf.URIs)
	}
	if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("extra SANs: %v %v %v", leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	key, err := parsePrivateKeyPEM(svid.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(key.Public(), leaf.PublicKey) {
		t.Error("KeyPEM does not match the leaf")
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("IsCA=%v KeyUsage=%v", leaf.IsCA, leaf.KeyUsage)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	if want := t0.Add(-ClockSkew); !leaf.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", leaf.NotBefore, want)
	}
	if want := t0.Add(-ClockSkew).Add(6 * time.Hour); !svid.NotAfter.Equal(want) || !leaf.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", svid.NotAfter, want)
	}
	// The whole lifetime is the 6 h TTL (back-dated a minute); rotation is at half of it.
	if want := t0.Add(-ClockSkew).Add(3 * time.Hour); !svid.RotateAt().Equal(want) {
		t.Errorf("RotateAt = %v, want %v", svid.RotateAt(), want)
	}
	if bits := leaf.SerialNumber.BitLen(); bits > 128 || bits < 64 {
		t.Errorf("serial has %d bits, want a random 128-bit number", bits)
	}
	other, err := ca.SignWorkload(id, 6*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if other.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
	if _, err := svid.TLSCertificate(); err != nil {
		t.Error(err)
	}
}

func TestSignWorkloadClampsToSigningCA(t *testing.T) {
	clock := newFakeClock(t0)
	dir := t.TempDir()
	f := newPluggedFixture(t, 1, t0.Add(2*time.Hour))
	f.write(t, dir)
	ca, err := LoadPluggedCA(dir, testTD, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := ca.SignWorkload(mustID(t, "a", "b"), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !svid.NotAfter.Equal(f.signer().cert.NotAfter) {
		t.Errorf("NotAfter = %v, want the intermediate's %v", svid.NotAfter, f.signer().cert.NotAfter)
	}
	clock.Set(t0.Add(3 * time.Hour))
	if _, err := ca.SignWorkload(mustID(t, "a", "b"), time.Hour); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("signing after the ca expired: err = %v", err)
	}
}

func TestSignWorkloadRejectsForeignTrustDomain(t *testing.T) {
	ca := selfSignedCA(t, newFakeClock(t0).Now)
	id, err := WorkloadID(spiffeid.RequireTrustDomainFromString("other.example"), "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.SignWorkload(id, time.Hour); err == nil || !strings.Contains(err.Error(), "trust domain") {
		t.Fatalf("err = %v, want a trust domain error", err)
	}
}

func TestSignServer(t *testing.T) {
	clock := newFakeClock(t0)
	ca := selfSignedCA(t, clock.Now)
	id := mustID(t, "warden-system", "wardend")
	svid, err := ca.SignServer(id, []string{"wardend.warden-system.svc", "localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := svid.Leaf
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String() {
		t.Errorf("URIs = %v", leaf.URIs)
	}
	if !slices.Equal(leaf.DNSNames, []string{"wardend.warden-system.svc", "localhost"}) {
		t.Errorf("DNSNames = %v", leaf.DNSNames)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IPAddresses = %v", leaf.IPAddresses)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: ca.Roots(), CurrentTime: clock.Now()}); err != nil {
		t.Errorf("server certificate does not verify for localhost: %v", err)
	}
}

func TestValidateSVID(t *testing.T) {
	clock := newFakeClock(t0)
	ca := selfSignedCA(t, clock.Now)
	otherCA := selfSignedCA(t, clock.Now)
	id := mustID(t, "default", "web")
	svid, err := ca.SignWorkload(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherSVID, err := ca.SignWorkload(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateSVID(svid.CertChainPEM, svid.KeyPEM, ca.Bundle(), id, t0); err != nil {
		t.Fatalf("valid svid rejected: %v", err)
	}
	tests := []struct {
		name    string
		keyPEM  []byte
		ca      *CA
		want    spiffeid.ID
		now     time.Time
		wantErr string
	}{
		{"wrong id", svid.KeyPEM, ca, mustID(t, "default", "db"), t0, "want spiffe://cluster.local/ns/default/sa/db"},
		{"other ca", svid.KeyPEM, otherCA, id, t0, "verify svid"},
		{"expired", svid.KeyPEM, ca, id, t0.Add(2 * time.Hour), "verify svid"},
		{"key of another svid", otherSVID.KeyPEM, ca, id, t0, "parse svid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSVID(svid.CertChainPEM, tc.keyPEM, tc.ca.Bundle(), tc.want, tc.now)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestWorkloadID(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	id, err := WorkloadID(td, "prod", "api")
	if err != nil {
		t.Fatal(err)
	}
	if got := id.String(); got != "spiffe://example.org/ns/prod/sa/api" {
		t.Errorf("id = %s", got)
	}
	for _, bad := range [][2]string{{"", "api"}, {"prod", ""}, {"a/b", "api"}} {
		if _, err := WorkloadID(td, bad[0], bad[1]); err == nil {
			t.Errorf("WorkloadID(%q, %q) succeeded", bad[0], bad[1])
		}
	}
	if _, err := WorkloadID(spiffeid.TrustDomain{}, "a", "b"); err == nil {
		t.Error("WorkloadID with a zero trust domain succeeded")
	}
}
