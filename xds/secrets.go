package xds

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wardenmesh/warden/certs"
)

// CertSecrets serves workload key material from the certs store. Every certificate
// is validated with go-spiffe against the mesh bundle before it is served.
type CertSecrets struct {
	CA    *certs.CA
	Store *certs.Store
	Now   func() time.Time
}

// WorkloadSecret mints (or reuses) the SVID for the proven identity.
func (c *CertSecrets) WorkloadSecret(id Identity) (WorkloadSecret, error) {
	sid, err := certs.WorkloadID(c.CA.TrustDomain(), id.Namespace, id.ServiceAccount)
	if err != nil {
		return WorkloadSecret{}, err
	}
	svid, err := c.Store.Get(sid)
	if err != nil {
		return WorkloadSecret{}, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if err := certs.ValidateSVID(svid.CertChainPEM, svid.KeyPEM, c.CA.Bundle(), sid, now()); err != nil {
		return WorkloadSecret{}, fmt.Errorf("refusing to serve certificate for %s: %w", sid, err)
	}
	return WorkloadSecret{CertChainPEM: svid.CertChainPEM, KeyPEM: svid.KeyPEM, RootPEM: c.CA.RootPEM()}, nil
}

// WardendID is wardend's own SPIFFE ID, pinned by every bootstrap.
func WardendID(td spiffeid.TrustDomain, namespace string) (spiffeid.ID, error) {
	return certs.WorkloadID(td, namespace, "wardend")
}

// ServingCert keeps wardend's TLS certificate fresh, re-signing at half life.
type ServingCert struct {
	CA    *certs.CA
	ID    spiffeid.ID
	DNS   []string
	IPs   []net.IP
	TTL   time.Duration
	Now   func() time.Time
	mu    sync.Mutex
	cur   *tls.Certificate
	renew time.Time
}

// Get returns the current certificate, signing a new one when due.
func (s *ServingCert) Get() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if s.cur != nil && now().Before(s.renew) {
		return s.cur, nil
	}
	svid, err := s.CA.SignServer(s.ID, s.DNS, s.IPs, s.TTL)
	if err != nil {
		return nil, fmt.Errorf("sign wardend serving certificate: %w", err)
	}
	c, err := svid.TLSCertificate()
	if err != nil {
		return nil, err
	}
	s.cur, s.renew = &c, svid.RotateAt()
	return s.cur, nil
}

// RegisterCertMetrics exposes certificate counts and expiries on /metrics.
func (s *Server) RegisterCertMetrics(store *certs.Store, ca *certs.CA) {
	until := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return time.Until(t).Seconds()
	}
	s.opts.Metrics.registerCertMetrics(
		func() float64 { return float64(store.Issued()) },
		func() float64 { return until(store.EarliestExpiry()) },
		func() float64 { return until(ca.RootExpiry()) },
	)
}
