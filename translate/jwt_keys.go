package translate

import (
	"strconv"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	jwtauthn "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"

	"github.com/wardenmesh/warden/watch/jwks"
)

const (
	failClosedProvider = "warden-fail-closed"
	failClosedIssuer   = "warden.invalid/fail-closed"
)

// unusableJWKS is a valid key set whose only key is the public half of an RSA key
// whose private half was discarded when it was made: no token verifies against it.
// Envoy accepts it, so an issuer whose key set is missing or broken still loads, and
// its tokens fail with 401 while the rest of the traffic flows.
const unusableJWKS = `{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"warden-unusable-key",` +
	`"e":"AQAB","n":"0FUIfx2uDxzQW5JgdRZ017Dnfo58N0lpnT_8dY4OhSd53ECt0xIb95nae69EtVOWTuZ-A5bCaNL6CgsOXnNFDrzliuYBqmrvs3noNVlTzMNMasqoieFsQRVTNDHB2RQgUQfJ2Spjd4viDi4CK_ctV9mfnU5CihvlILXskV6xd6B143KZFra2cDDCwCLafgyBvtUN2QXivndxcCLJvbjKHxk9DPQVmv1Jv9yS_UktsDfp2oZIrIlco-98nbZ9Qp25HjyTys_0dGNiMBpM7VNIcY_Yqa7JEoqvFuhqjoDOQtBgw_dSKYuqTnzc7rI7DnSbv5Jo9Vx9yOTdtbmy2jaCVw"}]}`

func inlineJWKS(keys string) *jwtauthn.JwtProvider_LocalJwks {
	return &jwtauthn.JwtProvider_LocalJwks{LocalJwks: &core.DataSource{
		Specifier: &core.DataSource_InlineString{InlineString: keys},
	}}
}

// failClosedJWTProvider verifies no token of issuer. It keeps the payload metadata
// key so RBAC finds nothing to match rather than a differently shaped config.
func failClosedJWTProvider(issuer string, gateway bool) *jwtauthn.JwtProvider {
	return &jwtauthn.JwtProvider{
		Issuer:              issuer,
		JwksSourceSpecifier: inlineJWKS(unusableJWKS),
		PayloadInMetadata:   JWTPayloadKey,
		ClearRouteCache:     gateway,
	}
}

// jwtKeys is the key set of a rule, ready for local_jwks: inline jwks, or the key set
// wardend fetched from jwksUri (Input.JWKS). ok is false, with an error diagnostic,
// when there is no usable key set.
func (b *builder) jwtKeys(r jwtRule) (keys string, ok bool) {
	rule := r.rule
	issuer := rule.GetIssuer()
	src, field := rule.GetJwks(), r.field(".jwks")
	fail := func(msg string) (string, bool) {
		b.diag(severityError, &r.ra.Meta, field, msg+": tokens of issuer "+issuer+" are rejected (401)")
		return "", false
	}
	if uri := rule.GetJwksUri(); uri != "" {
		field = r.field(".jwksUri")
		res, fetched := b.in.JWKS[uri]
		switch {
		case !fetched:
			return fail("key set " + uri + " has not been fetched")
		case res.JWKS == "":
			return fail("key set " + uri + " cannot be fetched: " + res.Error)
		case res.Error != "":
			b.diag(severityWarning, &r.ra.Meta, field,
				"refreshing key set "+uri+" failed ("+res.Error+"): the last good key set is served")
		}
		src = res.JWKS
	} else if src == "" {
		return fail("neither jwks nor jwksUri is set (OpenID discovery is not supported)")
	}
	keys, skipped, err := jwks.Usable(src)
	if err != nil {
		return fail(err.Error())
	}
	if skipped > 0 {
		b.diag(severityWarning, &r.ra.Meta, field,
			strconv.Itoa(skipped)+" key(s) of the key set are not usable by Envoy and are left out")
	}
	return keys, true
}
