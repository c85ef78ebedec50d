package xds

import (
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/wardenmesh/warden/watch"
)

// gatewayCredentials resolves the credentialName SDS names a gateway's configuration
// uses (kubernetes://<name>, kubernetes://<name>-cacert) to Secrets of ns, the
// namespace the proxy's credential proves, never one a Gateway object or the node
// message names. It is called for a proxy translated as a gateway, which the Pod
// object proves (provenGateway); its Gateway servers' and its DestinationRules'
// names are not told apart here, so a Secret read for either use
// (--gateway-secret-namespaces, --client-secret-namespaces) may be served; translation
// checks each name for its own use. A sidecar gets only its DestinationRules'
// credentials, from Secrets read for clients (clientCredentials). go-control-plane answers no
// SDS name that is not in a proxy's snapshot, so asking for another gets nothing. Names that cannot be served are
// left out: translation already replaced their servers by refusing chains.
func gatewayCredentials(in *watch.Input, ns string, names []string) map[string]*tlsv3.Secret {
	return credentialsFor(in, ns, names, watch.UseGateway|watch.UseClient)
}

// credentialsFor resolves names to Secrets of ns read for use (any of its bits).
func credentialsFor(in *watch.Input, ns string, names []string, use watch.SecretUse) map[string]*tlsv3.Secret {
	out := map[string]*tlsv3.Secret{}
	for _, n := range names {
		if !strings.HasPrefix(n, watch.CredentialPrefix) {
			continue
		}
		s, ca, ok := in.SecretFor(ns, n, use)
		if !ok {
			continue
		}
		inline := func(b []byte) *core.DataSource {
			return &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: b}}
		}
		if ca {
			out[n] = &tlsv3.Secret{Name: n, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: inline(s.CAPEM),
			}}}
			continue
		}
		out[n] = &tlsv3.Secret{Name: n, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(s.CertChainPEM),
			PrivateKey:       inline(s.KeyPEM),
		}}}
	}
	return out
}
