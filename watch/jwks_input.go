package watch

import "time"

// JWKSResult is the outcome of fetching one RequestAuthentication jwksUri.
type JWKSResult struct {
	// JWKS is the key set as fetched (JSON); "" when no fetch ever succeeded.
	JWKS string
	// Error says why JWKS is unusable (fetch failure, invalid key set); "" when it
	// is good. A result may have both when a refresh failed after an earlier success:
	// then JWKS is the last good key set, still served.
	Error string
	// Fetched is when JWKS was last fetched successfully; zero when never.
	Fetched time.Time
}

// WithJWKS returns a copy of in whose JWKS field is jwks; in itself is not modified,
// so the Input stays immutable for everyone already holding it.
func (in *Input) WithJWKS(jwks map[string]JWKSResult) *Input {
	c := *in
	c.JWKS = jwks
	return &c
}

// JWKSURIs returns the distinct jwksUri values of the RequestAuthentications,
// each with the longest fetch timeout its rules ask for (0 when none sets one).
func (in *Input) JWKSURIs() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, ra := range in.RequestAuthentications {
		for _, r := range ra.Spec.GetJwtRules() {
			uri := r.GetJwksUri()
			if uri == "" {
				continue
			}
			d := r.GetTimeout().AsDuration()
			if cur, ok := out[uri]; !ok || d > cur {
				out[uri] = d
			}
		}
	}
	return out
}
