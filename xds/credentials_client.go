package xds

import (
	"slices"
	"strings"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/wardenmesh/warden/watch"
)

// clientCredentials resolves the credentialName SDS names of a sidecar's
// DestinationRule TLS origination (kubernetes://<name>, kubernetes://<name>-cacert)
// to Secrets of ns, the namespace the proxy's credential proves (Istio's rule for
// sidecars: a Secret of another namespace is never served). names are the proxy's
// own translation output, so only Secrets that a DestinationRule applying to this
// proxy references are candidates; go-control-plane answers no SDS name outside the
// proxy's snapshot, so asking for any other name gets nothing. A name with a
// namespace or cluster part (kubernetes://<ns>/<name>) is never resolved, nor a
// Secret of a namespace not read for clients (--client-secret-namespaces): a
// gateway's credential in the sidecar's namespace is not a client credential.
//
// gatewayNames (translate.Output.GatewayCredentialNames) are left out: a proxy served
// this way is not a proven gateway, so a Gateway server's credential is never its own,
// even if translation named it.
func clientCredentials(in *watch.Input, ns string, names, gatewayNames []string) map[string]*tlsv3.Secret {
	var own []string
	for _, n := range names {
		if slices.Contains(gatewayNames, n) {
			continue
		}
		if rest, ok := strings.CutPrefix(n, watch.CredentialPrefix); ok && rest != "" && !strings.ContainsAny(rest, "/:") {
			own = append(own, n)
		}
	}
	if len(own) == 0 {
		return nil
	}
	return credentialsFor(in, ns, own, watch.UseClient)
}
