package translate

import (
	"strings"
	"time"

	"github.com/wardenmesh/warden/translate/internal/shared"
)

// protocol is how Warden proxies one port, chosen as Istio does: appProtocol wins over
// the port name; the name follows Istio's "<protocol>[-<suffix>]" convention; any
// other or missing name is detected per connection (auto).
type protocol int

const (
	// protoAuto: undeclared. Inbound, http_inspector sends client-first HTTP to an
	// HTTP chain and everything else to a TCP chain; outbound, the same split per
	// Service VIP. Server-first protocols wait for the detection timeout.
	protoAuto protocol = iota
	// protoHTTP: HTTP/1.1 (or h2c when the caller speaks it) through an HCM.
	protoHTTP
	// protoHTTP2: an HCM whose upstream speaks HTTP/2 (http2, grpc, grpc-web).
	protoHTTP2
	// protoTCP: opaque bytes through tcp_proxy (tcp, tls, https, mongo, mysql, redis).
	// TLS-carrying ports (tls, https) stay opaque so application TLS passes through.
	protoTCP
)

// istioProtocols is Istio's protocol table (pkg/config/protocol), lower-cased.
// http_proxy is HTTP; thrift, which Istio no longer proxies specially, is TCP.
var istioProtocols = map[string]protocol{
	"http": protoHTTP, "http_proxy": protoHTTP,
	"http2": protoHTTP2, "grpc": protoHTTP2, "grpc-web": protoHTTP2,
	"tcp": protoTCP, "tls": protoTCP, "https": protoTCP, "mongo": protoTCP,
	"mysql": protoTCP, "redis": protoTCP, "thrift": protoTCP,
}

// wellKnownTCPPorts are ports Istio treats as TCP when the declaration names no
// protocol it knows: MySQL's, whose server speaks first and so cannot be detected.
var wellKnownTCPPorts = map[uint32]bool{3306: true}

// portProtocol is the protocol of a port declared with this number, name and
// appProtocol. appProtocol, when set, decides alone (with Kubernetes' own
// kubernetes.io/h2c, ws and wss names); the name's prefix is matched case-insensitively.
func portProtocol(port uint32, name, appProtocol string) protocol {
	v := strings.ToLower(name)
	if appProtocol != "" {
		v = strings.ToLower(appProtocol)
		switch v {
		case "kubernetes.io/h2c":
			return protoHTTP2
		case "kubernetes.io/ws":
			return protoHTTP
		case "kubernetes.io/wss":
			return protoTCP
		}
	}
	if strings.HasPrefix(v, "grpc-web") {
		return protoHTTP2
	}
	prefix, _, _ := strings.Cut(v, "-")
	if p, ok := istioProtocols[prefix]; ok {
		return p
	}
	if wellKnownTCPPorts[port] {
		return protoTCP
	}
	return protoAuto
}

func (p protocol) String() string {
	switch p {
	case protoHTTP:
		return "http"
	case protoHTTP2:
		return "http2"
	case protoTCP:
		return "tcp"
	}
	return "auto"
}

// http reports whether the port always carries HTTP.
func (p protocol) http() bool { return p == protoHTTP || p == protoHTTP2 }

// serverFirstNames and serverFirstPorts are port names and numbers of protocols whose server speaks first
// (a banner or greeting). On an undeclared port the client sends nothing, so detection
// waits for its timeout before the connection is treated as TCP.
var serverFirstNames = map[string]bool{
	"smtp": true, "ftp": true, "pop3": true, "imap": true, "ssh": true, "nats": true,
	"xmpp": true,
}

var serverFirstPorts = map[uint32]bool{21: true, 22: true, 25: true, 110: true, 143: true, 587: true, 4222: true, 5222: true}

// serverFirstHint reports whether an auto port looks like a server-first protocol.
func serverFirstHint(port uint32, name string) bool {
	prefix, _, _ := strings.Cut(strings.ToLower(name), "-")
	return serverFirstNames[prefix] || serverFirstPorts[port]
}

// detectionTimeout is how long tls_inspector and http_inspector wait for a client's
// first bytes before the connection continues as plaintext TCP: meshConfig
// protocolDetectionTimeout when set (0s: wait for ever, Istio's default), else
// Warden's own default, the connect timeout, so a server-first protocol on an
// undeclared port still works, after that delay.
func (b *builder) detectionTimeout() time.Duration {
	if d := b.in.Mesh.GetProtocolDetectionTimeout(); d != nil && d.AsDuration() >= 0 {
		return d.AsDuration()
	}
	return connectTimeout
}

// detectionWait describes detectionTimeout for a diagnostic.
func (b *builder) detectionWait() string {
	if d := b.detectionTimeout(); d > 0 {
		return "waits " + d.String() + " for the client's first bytes before treating it as TCP"
	}
	return "waits for the client's first bytes for ever (meshConfig protocolDetectionTimeout 0s), so its connections hang"
}

// isStream reports whether a Kubernetes port protocol is one Envoy can proxy (TCP).
func isStream(protocol string) bool { return shared.IsStream(protocol) }
