package translate

import (
	"strings"

	"github.com/wardenmesh/warden/translate/internal/shared"
)

// Warden does not sniff protocols (no http_inspector): a port is HTTP unless its
// declaration says otherwise. appProtocol wins over the port name; the name follows
// Istio's "<protocol>[-<suffix>]" convention. TLS-carrying ports (tls, https) are
// treated as opaque TCP so application TLS passes through untouched.
var tcpProtocols = map[string]bool{
	"tcp": true, "tls": true, "https": true, "mongo": true, "mysql": true, "redis": true,
}

// isHTTP reports whether a port declared with this name and appProtocol carries HTTP.
func isHTTP(name, appProtocol string) bool {
	if appProtocol != "" {
		return !tcpProtocols[strings.ToLower(appProtocol)]
	}
	prefix, _, _ := strings.Cut(strings.ToLower(name), "-")
	return !tcpProtocols[prefix]
}

// isStream reports whether a Kubernetes port protocol is one Envoy can proxy (TCP).
func isStream(protocol string) bool { return shared.IsStream(protocol) }
