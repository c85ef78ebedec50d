package certs

import (
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ValidateSVID checks a PEM certificate chain and PKCS#8 key with go-spiffe:
// the chain is a well-formed X.509-SVID whose key matches, its ID is want,
// and it verifies against bundles at time now. The xds server calls it on
// each certificate before serving it.
func ValidateSVID(certPEM, keyPEM []byte, bundles x509bundle.Source, want spiffeid.ID, now time.Time) error {
	svid, err := x509svid.Parse(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("parse svid: %w", err)
	}
	if svid.ID != want {
		return fmt.Errorf("svid id is %s, want %s", svid.ID, want)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundles, x509svid.WithTime(now)); err != nil {
		return fmt.Errorf("verify svid %s: %w", want, err)
	}
	return nil
}
