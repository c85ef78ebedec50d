package translate

import (
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	rbacnet "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/wardenmesh/warden/watch"
)

// A gateway port serves TLS when one of its servers does: HTTPS servers terminate it
// (one filter chain per server, told apart by SNI, as Istio's
// pilot/pkg/networking/core/gateway.go buildGatewayListeners builds them) and the
// certificate comes over SDS as kubernetes://<credentialName>, resolved by xds in the
// gateway proxy's own namespace (see watch.Input.SecretFor).

// isTLSServer reports whether s terminates or passes through TLS.
func isTLSServer(s *networking.Server) bool {
	switch strings.ToUpper(s.GetPort().GetProtocol()) {
	case "HTTPS", "TLS":
		return true
	}
	return false
}

// gatewayHTTPSRouteName is the RDS name of one HTTPS server, as Istio names it:
// https.<port>.<port name>.<gateway name>.<gateway namespace>.
func gatewayHTTPSRouteName(s gatewayServer) string {
	return "https." + strconv.FormatUint(uint64(s.server.GetPort().GetNumber()), 10) + "." +
		s.server.GetPort().GetName() + "." + s.gw.Name + "." + s.gw.Namespace
}

// serverNames are the SNI names of a server's filter chain: its hosts without the
// namespace part; a "*" host matches every SNI (and none), so the chain has none.
func serverNames(s *networking.Server) []string {
	var out []string
	for _, h := range s.GetHosts() {
		if _, host, ok := strings.Cut(h, "/"); ok {
			h = host
		}
		if h == "*" {
			return nil
		}
		out = append(out, h)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// gatewayTLSListener is 0.0.0.0_<port> for a port with TLS servers: tls_inspector and
// one filter chain per server. A server whose credential cannot be served keeps its
// SNI match but refuses every connection, so the other servers are unaffected.
func (b *builder) gatewayTLSListener(port uint32, w *watch.Workload, servers []gatewayServer) (*listener.Listener, []types.Resource) {
	name := "0.0.0.0_" + strconv.FormatUint(uint64(port), 10)
	l := &listener.Listener{
		Name:             name,
		Address:          socketAddress("0.0.0.0", port),
		TrafficDirection: core.TrafficDirection_OUTBOUND,
		ListenerFilters: []*listener.ListenerFilter{{
			Name:       wellknown.TlsInspector,
			ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: b.any(&tlsinspector.TlsInspector{})},
		}},
	}
	var routes []types.Resource
	seen := map[string]string{}
	for _, s := range servers {
		field := s.field
		if !isTLSServer(s.server) {
			b.diag(severityError, &s.gw.Meta, field+".port.protocol",
				"an HTTP server cannot share port "+strconv.FormatUint(uint64(port), 10)+" with HTTPS or TLS servers: server ignored")
			continue
		}
		sni := serverNames(s.server)
		key := strings.Join(sni, ",")
		if first, dup := seen[key]; dup {
			b.diag(severityError, &s.gw.Meta, field+".hosts",
				"the same hosts (SNI) as "+first+" on port "+strconv.FormatUint(uint64(port), 10)+": server ignored")
			continue
		}
		seen[key] = s.gw.Key() + " " + field
		match := &listener.FilterChainMatch{ServerNames: sni}
		chainName := strings.TrimPrefix(gatewayHTTPSRouteName(s), "https.")
		mode := s.server.GetTls().GetMode()
		if mode == networking.ServerTLSSettings_PASSTHROUGH {
			l.FilterChains = append(l.FilterChains, b.passthroughChains(s, port, match)...)
			continue
		}
		ts, ok := b.serverTLS(w, s)
		if !ok {
			l.FilterChains = append(l.FilterChains, b.refusingChain(chainName, match))
			continue
		}
		if strings.ToUpper(s.server.GetPort().GetProtocol()) == "TLS" {
			// TLS terminated, then opaque bytes by VirtualService tcp routes (gateway_tcp.go).
			l.FilterChains = append(l.FilterChains, b.terminatedTCPChain(s, port, chainName, match, ts))
			continue
		}
		routeName := gatewayHTTPSRouteName(s)
		m := b.gatewayHCM(name, routeName, w)
		l.FilterChains = append(l.FilterChains, &listener.FilterChain{
			Name:             chainName,
			FilterChainMatch: match,
			TransportSocket:  ts,
			Filters:          []*listener.Filter{m},
		})
		routes = append(routes, b.gatewayRouteNamed(routeName, port, []gatewayServer{s}))
	}
	if len(l.FilterChains) == 0 {
		l.FilterChains = append(l.FilterChains, b.refusingChain(name, nil))
	}
	return l, routes
}

// refusingChain accepts a connection and closes it: a network RBAC filter without
// policies allows nothing, and the terminal tcp_proxy goes to BlackHoleCluster,
// which has no endpoints. No TLS is offered, so a handshake fails.
func (b *builder) refusingChain(name string, match *listener.FilterChainMatch) *listener.FilterChain {
	b.refusing = true
	return &listener.FilterChain{
		Name:             name,
		FilterChainMatch: match,
		Filters: []*listener.Filter{{
			Name: wellknown.RoleBasedAccessControl,
			ConfigType: &listener.Filter_TypedConfig{TypedConfig: b.any(&rbacnet.RBAC{
				StatPrefix: "gateway_refused_",
				Rules:      &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW},
			})},
		}, b.tcpProxy("gateway_refused_", BlackHoleCluster)},
	}
}

// serverTLS is the transport socket terminating a server's TLS, or false (with a
// diagnostic naming Gateway, server and Secret) when it cannot be served.
func (b *builder) serverTLS(w *watch.Workload, s gatewayServer) (*core.TransportSocket, bool) {
	t := s.server.GetTls()
	field := s.field + ".tls"
	params, ok := b.serverTLSParams(s, field, t)
	if !ok {
		return nil, false
	}
	alpn := []string{"h2", "http/1.1"}
	if strings.ToUpper(s.server.GetPort().GetProtocol()) == "TLS" {
		alpn = nil // opaque bytes after the handshake: no application protocol to offer
	}
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{TlsParams: params, AlpnProtocols: alpn}}
	common := ctx.CommonTlsContext
	check := &tlsv3.CertificateValidationContext{}
	for _, san := range t.GetSubjectAltNames() {
		check.MatchTypedSubjectAltNames = append(check.MatchTypedSubjectAltNames, typedSAN(san))
	}
	if !b.checkSpki(s, field, t.GetVerifyCertificateSpki()) {
		return nil, false
	}
	check.VerifyCertificateSpki = t.GetVerifyCertificateSpki()
	for i, h := range t.GetVerifyCertificateHash() {
		// Envoy wants hex, with or without colons; Istio passes them through.
		if raw, err := hex.DecodeString(strings.ReplaceAll(h, ":", "")); err != nil || len(raw) != 32 {
			b.diag(severityError, &s.gw.Meta, field+".verifyCertificateHash["+strconv.Itoa(i)+"]",
				"server "+serverLabel(s)+": not a hex SHA-256 digest: server refuses connections")
			return nil, false
		}
		check.VerifyCertificateHash = append(check.VerifyCertificateHash, h)
	}
	switch t.GetMode() {
	case networking.ServerTLSSettings_SIMPLE, networking.ServerTLSSettings_MUTUAL, networking.ServerTLSSettings_OPTIONAL_MUTUAL:
		cred := t.GetCredentialName()
		if cred == "" {
			what := "serverCertificate/privateKey files are not supported (Warden reads no proxy files)"
			if t.GetServerCertificate() == "" {
				what = "credentialName is required"
			}
			b.diag(severityError, &s.gw.Meta, field+".credentialName", what+": server refuses connections")
			return nil, false
		}
		if !b.credentialOK(s, field, w.Namespace, cred, false) {
			return nil, false
		}
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsSecret(watch.CredentialPrefix + cred)}
		b.credentials = append(b.credentials, watch.CredentialPrefix+cred)
		if t.GetMode() == networking.ServerTLSSettings_SIMPLE {
			break
		}
		if !b.credentialOK(s, field, w.Namespace, cred, true) {
			return nil, false
		}
		caName := watch.CredentialPrefix + cred + watch.CACertSuffix
		b.credentials = append(b.credentials, caName)
		common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         check,
				ValidationContextSdsSecretConfig: sdsSecret(caName),
			},
		}
		ctx.RequireClientCertificate = boolValue(t.GetMode() == networking.ServerTLSSettings_MUTUAL)
	case networking.ServerTLSSettings_ISTIO_MUTUAL:
		// The gateway's own workload certificate; clients must hold one of the mesh.
		b.secrets = true
		if len(check.MatchTypedSubjectAltNames) == 0 {
			check.MatchTypedSubjectAltNames = trustDomainPrefixes(b.in.TrustDomain, b.in.Mesh.GetTrustDomainAliases())
		}
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsSecret(SecretDefault)}
		common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         check,
				ValidationContextSdsSecretConfig: sdsSecret(SecretRootCA),
			},
		}
		ctx.RequireClientCertificate = boolValue(true)
	default:
		b.diag(severityError, &s.gw.Meta, field+".mode", "mode "+t.GetMode().String()+" is not supported on gateways: server refuses connections")
		return nil, false
	}
	return b.tlsSocket(ctx), true
}

// credentialOK checks that the Secret behind credentialName (its CA when ca) can be
// served in the gateway proxy's namespace ns, reporting Gateway, server and Secret
// otherwise.
func (b *builder) credentialOK(s gatewayServer, field, ns, cred string, ca bool) bool {
	name := watch.CredentialPrefix + cred
	what := "certificate and key (tls.crt, tls.key)"
	if ca {
		name += watch.CACertSuffix
		what = "client CA (ca.crt, or a Secret " + cred + watch.CACertSuffix + ")"
	}
	if _, _, ok := b.in.SecretFor(ns, name, watch.UseGateway); ok {
		return true
	}
	why := "no Secret " + ns + "/" + cred
	if !b.in.SecretsRead(ns, watch.UseGateway) {
		why = "no Secret " + ns + "/" + cred + " for Gateway credentialName (wardend reads no Secrets of namespace " + ns + " for gateways: add it to --gateway-secret-namespaces)"
	} else if sec := b.in.Secrets[ns+"/"+cred]; sec != nil {
		why = "Secret " + ns + "/" + cred + " has no usable " + what
		if sec.Err != "" {
			why += ": " + sec.Err
		}
	}
	b.diag(severityError, &s.gw.Meta, field+".credentialName",
		"server "+serverLabel(s)+": "+why+" (the Secret must be in the gateway's namespace "+ns+"): server refuses connections")
	return false
}

// serverLabel names a server in diagnostics: its port name, or its index.
func serverLabel(s gatewayServer) string {
	if n := s.server.GetPort().GetName(); n != "" {
		return n + " (" + s.field + ")"
	}
	return s.field
}

// serverTLSParams maps minProtocolVersion, maxProtocolVersion and cipherSuites; a
// gateway defaults to TLS 1.2 as Istio's does.
func (b *builder) serverTLSParams(s gatewayServer, field string, t *networking.ServerTLSSettings) (*tlsv3.TlsParameters, bool) {
	versions := map[networking.ServerTLSSettings_TLSProtocol]tlsv3.TlsParameters_TlsProtocol{
		networking.ServerTLSSettings_TLS_AUTO: tlsv3.TlsParameters_TLS_AUTO,
		networking.ServerTLSSettings_TLSV1_0:  tlsv3.TlsParameters_TLSv1_0,
		networking.ServerTLSSettings_TLSV1_1:  tlsv3.TlsParameters_TLSv1_1,
		networking.ServerTLSSettings_TLSV1_2:  tlsv3.TlsParameters_TLSv1_2,
		networking.ServerTLSSettings_TLSV1_3:  tlsv3.TlsParameters_TLSv1_3,
	}
	p := &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2}
	if v := t.GetMinProtocolVersion(); v != networking.ServerTLSSettings_TLS_AUTO {
		p.TlsMinimumProtocolVersion = versions[v]
	}
	p.TlsMaximumProtocolVersion = versions[t.GetMaxProtocolVersion()]
	if p.TlsMaximumProtocolVersion != tlsv3.TlsParameters_TLS_AUTO && p.TlsMaximumProtocolVersion < p.TlsMinimumProtocolVersion {
		b.diag(severityError, &s.gw.Meta, field+".maxProtocolVersion", "server "+serverLabel(s)+": below minProtocolVersion: server refuses connections")
		return nil, false
	}
	if !b.checkCipherSuites(s, field, t.GetCipherSuites()) {
		return nil, false
	}
	p.CipherSuites = slices.Clone(t.GetCipherSuites())
	return p, true
}
