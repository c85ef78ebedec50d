package certs

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// CA signs workload and server certificates for one trust domain. It is safe
// for concurrent use; it never changes after construction.
type CA struct {
	td  spiffeid.TrustDomain
	now func() time.Time

	cert *x509.Certificate // signs the leaves
	key  crypto.Signer
	// intermediates are the certificates served after a leaf: cert and the
	// plugged chain above it, without any certificate of the root bundle.
	intermediates []*x509.Certificate
	roots         []*x509.Certificate
	bundle        *x509bundle.Bundle
	pool          *x509.CertPool

	rootExpiry time.Time // NotAfter of the root that cert chains to
	notAfter   time.Time // earliest NotAfter on the path to that root

	intermediatesPEM []byte
	// The inputs as given, for PEM.
	certPEM, keyPEM, rootPEM, chainPEM []byte
}

// caSources names the four inputs in errors: file paths for a plugged CA,
// descriptions for PEM handed in by a caller.
type caSources struct {
	cert, key, root, chain string
}

var pemSources = caSources{cert: "ca certificate", key: "ca key", root: "root bundle", chain: "certificate chain"}

// CAFromPEM builds a CA from PEM data: the signing certificate and its key,
// the root bundle, and the chain from the signing certificate towards the
// root (may be empty, may repeat the signing certificate or the root, as
// Istio's cert-chain.pem does). Kubernetes mode keeps the same four values in
// a Secret. A nil now means time.Now.
func CAFromPEM(certPEM, keyPEM, rootPEM, chainPEM []byte, trustDomain string, now func() time.Time) (*CA, error) {
	return newCA(certPEM, keyPEM, rootPEM, chainPEM, trustDomain, now, pemSources)
}

func newCA(certPEM, keyPEM, rootPEM, chainPEM []byte, trustDomain string, now func() time.Time, src caSources) (*CA, error) {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, fmt.Errorf("trust domain %q: %w", trustDomain, err)
	}
	if now == nil {
		now = time.Now
	}
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.cert, err)
	}
	cert := certs[0]
	if err := checkSigningCert(cert); err != nil {
		return nil, fmt.Errorf("%s: %w", src.cert, err)
	}
	key, err := parsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.key, err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("%s: private key does not match the certificate in %s", src.key, src.cert)
	}
	roots, err := parseCertsPEM(rootPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.root, err)
	}
	chain, err := parseCertsPEMAllowEmpty(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.chain, err)
	}
	intermediates := servedIntermediates(cert, chain, roots)
	pool := newPool(roots)
	verified, err := cert.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: newPool(intermediates),
		CurrentTime:   now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("%s does not chain to a root in %s: %w", src.cert, src.root, err)
	}
	path := verified[0]
	return &CA{
		td:               td,
		now:              now,
		cert:             cert,
		key:              key,
		intermediates:    intermediates,
		roots:            roots,
		bundle:           x509bundle.FromX509Authorities(td, roots),
		pool:             pool,
		rootExpiry:       path[len(path)-1].NotAfter,
		notAfter:         earliestNotAfter(path),
		intermediatesPEM: encodeCertsPEM(intermediates...),
		certPEM:          bytes.Clone(certPEM),
		keyPEM:           bytes.Clone(keyPEM),
		rootPEM:          bytes.Clone(rootPEM),
		chainPEM:         bytes.Clone(chainPEM),
	}, nil
}

// checkSigningCert rejects a certificate that may not sign others.
func checkSigningCert(cert *x509.Certificate) error {
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return errors.New("certificate is not a CA (basic constraints CA:TRUE required)")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("certificate key usage lacks keyCertSign")
	}
	return nil
}

// servedIntermediates is the chain sent after each leaf: the signing
// certificate and the plugged chain, dropping duplicates and any certificate
// that is in the root bundle (peers have the roots already).
func servedIntermediates(cert *x509.Certificate, chain, roots []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	seen := func(c *x509.Certificate) bool {
		for _, o := range out {
			if o.Equal(c) {
				return true
			}
		}
		for _, r := range roots {
			if r.Equal(c) {
				return true
			}
		}
		return false
	}
	for _, c := range append([]*x509.Certificate{cert}, chain...) {
		if !seen(c) {
			out = append(out, c)
		}
	}
	return out
}

func newPool(certs []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

func earliestNotAfter(certs []*x509.Certificate) time.Time {
	var t time.Time
	for _, c := range certs {
		if t.IsZero() || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// TrustDomain is the trust domain the CA issues identities in.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// RootPEM is the trust bundle (every root) as PEM, served as ROOTCA.
func (ca *CA) RootPEM() []byte { return encodeCertsPEM(ca.roots...) }

// Roots is a new pool holding the trust bundle.
func (ca *CA) Roots() *x509.CertPool { return ca.pool.Clone() }

// Bundle is the trust bundle as a go-spiffe bundle for the CA's trust domain.
func (ca *CA) Bundle() *x509bundle.Bundle { return ca.bundle.Clone() }

// RootExpiry is when the root the signing certificate chains to expires.
func (ca *CA) RootExpiry() time.Time { return ca.rootExpiry }

// NotAfter is the latest time any certificate issued by the CA may be valid
// until: the earliest expiry on the path from the signing certificate to
// the root.
func (ca *CA) NotAfter() time.Time { return ca.notAfter }

// PEM exports the CA in the form CAFromPEM accepts.
func (ca *CA) PEM() (certPEM, keyPEM, rootPEM, chainPEM []byte) {
	return bytes.Clone(ca.certPEM), bytes.Clone(ca.keyPEM), bytes.Clone(ca.rootPEM), bytes.Clone(ca.chainPEM)
}
