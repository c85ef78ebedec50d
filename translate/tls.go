package translate

import (
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rawbuffer "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
)

// The SDS secret names, the one set: translate refers to them and xds serves exactly
// these, made from the proxy's own identity.
const (
	SecretDefault = "default" // the workload's SVID and key
	SecretRootCA  = "ROOTCA"  // the mesh trust bundle
)

// systemCABundle is where SIMPLE/MUTUAL origination finds trusted roots when the
// DestinationRule names none.
const systemCABundle = "/etc/ssl/certs/ca-certificates.crt"

// Application protocols a mesh client offers. The server's PERMISSIVE chains use these
// to tell mesh mTLS apart from application TLS (see meshClientALPN).
var meshServerALPNs = []string{"istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"}

func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		ResourceApiVersion:    core.ApiVersion_V3,
	}
}

func sdsSecret(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: adsSource()}
}

func meshTLSParams() *tlsv3.TlsParameters {
	return &tlsv3.TlsParameters{
		TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
		TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
	}
}

// trustDomainPrefixes are the SAN prefixes a server accepts from mesh clients: the
// trust domain and its aliases.
func trustDomainPrefixes(td string, aliases []string) []*tlsv3.SubjectAltNameMatcher {
	out := []*tlsv3.SubjectAltNameMatcher{uriSAN(prefixMatch("spiffe://" + td + "/"))}
	for _, a := range aliases {
		if a != "" && a != td {
			out = append(out, uriSAN(prefixMatch("spiffe://"+a+"/")))
		}
	}
	return out
}

func prefixMatch(s string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: s}}
}

func exactMatch(s string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}}
}

func uriSAN(m *matcher.StringMatcher) *tlsv3.SubjectAltNameMatcher {
	return &tlsv3.SubjectAltNameMatcher{SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: m}
}

// typedSAN matches a user-given subject alt name exactly: a URI SAN for URIs (SPIFFE
// IDs), a DNS SAN otherwise.
func typedSAN(name string) *tlsv3.SubjectAltNameMatcher {
	if strings.Contains(name, "://") {
		return uriSAN(exactMatch(name))
	}
	return &tlsv3.SubjectAltNameMatcher{SanType: tlsv3.SubjectAltNameMatcher_DNS, Matcher: exactMatch(name)}
}

// meshCommonTLS is the CommonTlsContext of mesh mTLS on either side: our SVID and the
// mesh root over SDS, peers checked against sans.
func meshCommonTLS(sans []*tlsv3.SubjectAltNameMatcher, alpn []string) *tlsv3.CommonTlsContext {
	return &tlsv3.CommonTlsContext{
		TlsParams:                      meshTLSParams(),
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret(SecretDefault)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sans},
				ValidationContextSdsSecretConfig: sdsSecret(SecretRootCA),
			},
		},
		AlpnProtocols: alpn,
	}
}

// inboundMeshTLS terminates mesh mTLS: a client certificate from the trust domain is
// required.
func (b *builder) inboundMeshTLS() *core.TransportSocket {
	b.secrets = true
	ctx := &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: boolValue(true),
		CommonTlsContext: meshCommonTLS(
			trustDomainPrefixes(b.in.TrustDomain, b.in.Mesh.GetTrustDomainAliases()),
			[]string{"h2", "http/1.1"}),
	}
	return b.tlsSocket(ctx)
}

// meshClientALPN is the ALPN a mesh client offers. Istio sets it per request with its
// own istio.alpn filter, which stock Envoy lacks; the server only uses the istio*
// tokens to tell mesh mTLS from application TLS, so a static list per cluster protocol
// is enough.
func meshClientALPN(http bool) []string {
	if http {
		return []string{"istio-http/1.1", "istio"}
	}
	return []string{"istio"}
}

// upstreamMeshTLS originates mesh mTLS (ISTIO_MUTUAL). sans are the accepted server
// identities; an empty list accepts any identity of the trust domain.
func (b *builder) upstreamMeshTLS(sni string, sans []*tlsv3.SubjectAltNameMatcher, http bool) *core.TransportSocket {
	b.secrets = true
	if len(sans) == 0 {
		sans = trustDomainPrefixes(b.in.TrustDomain, nil)
	}
	return b.tlsSocket(&tlsv3.UpstreamTlsContext{
		Sni:              sni,
		CommonTlsContext: meshCommonTLS(sans, meshClientALPN(http)),
	})
}

func (b *builder) tlsSocket(ctx proto.Message) *core.TransportSocket {
	return &core.TransportSocket{
		Name:       wellknown.TransportSocketTLS,
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: b.any(ctx)},
	}
}

func (b *builder) rawSocket() *core.TransportSocket {
	return &core.TransportSocket{
		Name:       wellknown.TransportSocketRawBuffer,
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: b.any(&rawbuffer.RawBuffer{})},
	}
}
