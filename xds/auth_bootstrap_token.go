package xds

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenmesh/warden/certs"
)

// BootstrapTokenAuth authenticates proxies with wardend-signed bootstrap tokens, the
// credential of directory mode (certs.TokenSigner; `wardenctl token` mints them). In
// Kubernetes mode TokenReviewAuth checks service-account tokens instead, and ChainAuth
// accepts either.
type BootstrapTokenAuth struct {
	Signer *certs.TokenSigner
	Now    func() time.Time
}

// Authenticate verifies the token's signature, audience and expiry.
func (a *BootstrapTokenAuth) Authenticate(_ context.Context, token string) (Identity, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	c, err := a.Signer.Verify(token, now())
	if err != nil {
		return Identity{}, fmt.Errorf("bootstrap token: %w", err)
	}
	return Identity{Namespace: c.Namespace, ServiceAccount: c.ServiceAccount, Pod: c.Pod, Labels: c.Labels, IPs: c.IPs}, nil
}
