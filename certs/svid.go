package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// SVID is an X.509 SPIFFE identity document: a leaf certificate with its
// private key.
type SVID struct {
	ID spiffeid.ID
	// CertChainPEM is the leaf followed by the intermediates, without the
	// root.
	CertChainPEM []byte
	// KeyPEM is the leaf's PKCS#8 private key.
	KeyPEM   []byte
	Leaf     *x509.Certificate
	NotAfter time.Time
}

// RotateAt is when the SVID should be replaced: half way through its
// lifetime.
func (s *SVID) RotateAt() time.Time {
	return s.Leaf.NotBefore.Add(s.Leaf.NotAfter.Sub(s.Leaf.NotBefore) / 2)
}

// TLSCertificate returns the SVID for crypto/tls.
func (s *SVID) TLSCertificate() (tls.Certificate, error) {
	cert, err := tls.X509KeyPair(s.CertChainPEM, s.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("svid %s as tls certificate: %w", s.ID, err)
	}
	return cert, nil
}

// WardendServiceAccount is the service account whose SPIFFE ID wardend's
// own serving certificate carries.
const WardendServiceAccount = "wardend"

// WorkloadID is the SPIFFE ID of a Kubernetes service account:
// spiffe://<td>/ns/<ns>/sa/<sa>.
func WorkloadID(td spiffeid.TrustDomain, ns, sa string) (spiffeid.ID, error) {
	if td.IsZero() {
		return spiffeid.ID{}, fmt.Errorf("workload id for %s/%s: empty trust domain", ns, sa)
	}
	id, err := spiffeid.FromSegments(td, "ns", ns, "sa", sa)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("workload id for namespace %q service account %q: %w", ns, sa, err)
	}
	return id, nil
}

// SignWorkload issues a workload SVID for id, valid for ttl (clamped to the
// CA's own lifetime), usable as TLS server and client.
func (ca *CA) SignWorkload(id spiffeid.ID, ttl time.Duration) (*SVID, error) {
	return ca.issue(workloadSpec(id, ttl), ca.now())
}

// SignServer issues a TLS server certificate whose URI SAN is id (wardend's
// own SPIFFE ID) with extra DNS and IP SANs.
func (ca *CA) SignServer(id spiffeid.ID, dnsNames []string, ips []net.IP, ttl time.Duration) (*SVID, error) {
	return ca.issue(serverSpec(id, dnsNames, ips, ttl), ca.now())
}

// issue signs spec at time now and validates the result with go-spiffe.
func (ca *CA) issue(spec leafSpec, now time.Time) (*SVID, error) {
	if !spec.id.MemberOf(ca.td) {
		return nil, fmt.Errorf("sign %s: not in trust domain %s", spec.id, ca.td)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", spec.id, err)
	}
	tmpl, err := leafTemplate(spec, serial, now, ca.notAfter)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", spec.id, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sign %s: generate key: %w", spec.id, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", spec.id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sign %s: parse issued certificate: %w", spec.id, err)
	}
	keyPEM, err := encodeKeyPEM(key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", spec.id, err)
	}
	chainPEM := append(encodeCertsPEM(leaf), ca.intermediatesPEM...)
	if err := ValidateSVID(chainPEM, keyPEM, ca.bundle, spec.id, now); err != nil {
		return nil, fmt.Errorf("sign %s: issued certificate is invalid: %w", spec.id, err)
	}
	return &SVID{ID: spec.id, CertChainPEM: chainPEM, KeyPEM: keyPEM, Leaf: leaf, NotAfter: leaf.NotAfter}, nil
}
