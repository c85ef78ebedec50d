package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// ClockSkew is how far NotBefore is back-dated so that peers whose clocks
// run slightly behind accept a fresh certificate.
const ClockSkew = time.Minute

// leafSpec describes a leaf certificate to issue.
type leafSpec struct {
	id          spiffeid.ID
	dnsNames    []string
	ips         []net.IP
	extKeyUsage []x509.ExtKeyUsage
	ttl         time.Duration
}

func workloadSpec(id spiffeid.ID, ttl time.Duration) leafSpec {
	return leafSpec{
		id:          id,
		extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		ttl:         ttl,
	}
}

func serverSpec(id spiffeid.ID, dnsNames []string, ips []net.IP, ttl time.Duration) leafSpec {
	return leafSpec{
		id:          id,
		dnsNames:    dnsNames,
		ips:         ips,
		extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		ttl:         ttl,
	}
}

// backdate is how far NotBefore goes back: ClockSkew, but never more than a quarter of
// the lifetime, so that a short TTL (tests, aggressive rotation) still leaves most of
// the certificate's life ahead of it.
func backdate(ttl time.Duration) time.Duration {
	return min(ClockSkew, ttl/4)
}

// leafTemplate builds the certificate template for spec at time now. It is
// pure: the clock and the serial are inputs. The whole lifetime is ttl, back-dated
// (NotBefore = now-backdate(ttl), NotAfter = NotBefore+ttl), so a 24 h TTL means
// a certificate valid for 24 h at most; NotAfter is clamped to caNotAfter so that a
// leaf never outlives the CA that signs it.
func leafTemplate(spec leafSpec, serial *big.Int, now, caNotAfter time.Time) (*x509.Certificate, error) {
	switch {
	case spec.id.IsZero():
		return nil, errors.New("empty spiffe id")
	case spec.ttl <= 0:
		return nil, fmt.Errorf("ttl %s must be positive", spec.ttl)
	case serial == nil || serial.Sign() <= 0:
		return nil, errors.New("serial number must be positive")
	}
	notBefore := now.Add(-backdate(spec.ttl))
	notAfter := notBefore.Add(spec.ttl)
	if notAfter.After(caNotAfter) {
		notAfter = caNotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("signing ca expired at %s", caNotAfter.UTC().Format(time.RFC3339))
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		URIs:                  []*url.URL{spec.id.URL()},
		DNSNames:              spec.dnsNames,
		IPAddresses:           spec.ips,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           spec.extKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  false,
	}, nil
}
