package translate

import (
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/wardenmesh/warden/watch"
)

// clusterSecurity is how a Service port's cluster talks to its endpoints.
type clusterSecurity struct {
	socket   *core.TransportSocket                   // one socket for every endpoint
	matches  []*cluster.Cluster_TransportSocketMatch // auto mTLS: per-endpoint choice
	autoMTLS bool                                    // endpoints carry tlsMode metadata
	blocked  bool                                    // the TLS settings cannot be honoured: fail closed
}

// meshSNI is the SNI of mesh mTLS to a Service port, as Istio names it.
func meshSNI(port uint32, fqdn string) string {
	return "outbound_." + strconv.FormatUint(uint64(port), 10) + "_._." + fqdn
}

// serviceIdentities are the SPIFFE IDs a Service's endpoints may present. An empty
// result lets upstreamMeshTLS accept any identity of the trust domain.
func (b *builder) serviceIdentities(svc *watch.Service) []*tlsv3.SubjectAltNameMatcher {
	sas := b.in.ServiceAccountsOf(svc)
	out := make([]*tlsv3.SubjectAltNameMatcher, 0, len(sas))
	for _, sa := range sas {
		out = append(out, uriSAN(exactMatch(spiffeID(b.in.TrustDomain, svc.Namespace, sa))))
	}
	return out
}

// spiffeID accepts a service account as "name" (in namespace), "ns/name" or a full
// SPIFFE ID.
func spiffeID(td, namespace, sa string) string {
	if strings.HasPrefix(sa, "spiffe://") {
		return sa
	}
	if ns, name, ok := strings.Cut(sa, "/"); ok {
		namespace, sa = ns, name
	}
	return "spiffe://" + td + "/ns/" + namespace + "/sa/" + sa
}

func (b *builder) autoMTLSEnabled() bool {
	v := b.in.Mesh.GetEnableAutoMtls()
	return v == nil || v.GetValue()
}

// clusterSecurity applies the DestinationRule's client TLS settings for the port, or
// auto mTLS when the rule sets none.
func (b *builder) clusterSecurity(svc *watch.Service, sp watch.ServicePort, fqdn string, http bool, dr *drRule) clusterSecurity {
	tls, field := dr.tlsFor(sp.Port)
	if tls == nil {
		if !b.autoMTLSEnabled() {
			return clusterSecurity{}
		}
		mesh := b.upstreamMeshTLS(meshSNI(sp.Port, fqdn), b.serviceIdentities(svc), http)
		return clusterSecurity{matches: b.autoMTLSMatches(mesh), autoMTLS: true}
	}
	switch tls.GetMode() {
	case networking.ClientTLSSettings_DISABLE:
		return clusterSecurity{}
	case networking.ClientTLSSettings_ISTIO_MUTUAL:
		sni := tls.GetSni()
		if sni == "" {
			sni = meshSNI(sp.Port, fqdn)
		}
		sans := b.serviceIdentities(svc)
		if len(tls.GetSubjectAltNames()) > 0 {
			sans = typedSANs(tls.GetSubjectAltNames())
		}
		return clusterSecurity{socket: b.upstreamMeshTLS(sni, sans, http)}
	default:
		return b.originateTLS(dr, field, tls, fqdn)
	}
}

func typedSANs(names []string) []*tlsv3.SubjectAltNameMatcher {
	out := make([]*tlsv3.SubjectAltNameMatcher, 0, len(names))
	for _, n := range names {
		out = append(out, typedSAN(n))
	}
	return out
}

// originateTLS is SIMPLE or MUTUAL TLS with certificates from files on the proxy, or
// from a Kubernetes Secret named by credentialName (originateTLSFromSecret).
//
// A MUTUAL rule without a client certificate cannot be honoured, nor can a
// credentialName whose Secret is missing or unusable. Both fail closed: the cluster
// gets no endpoints, so requests fail instead of silently going out in plaintext or
// with weaker TLS than asked for.
func (b *builder) originateTLS(dr *drRule, field string, tls *networking.ClientTLSSettings, fqdn string) clusterSecurity {
	mutual := tls.GetMode() == networking.ClientTLSSettings_MUTUAL
	switch {
	case tls.GetCredentialName() != "":
		return b.originateTLSFromSecret(dr, field, tls, fqdn)
	case mutual && (tls.GetClientCertificate() == "" || tls.GetPrivateKey() == ""):
		b.diag(severityError, &dr.cfg.Meta, field,
			"MUTUAL needs clientCertificate and privateKey: traffic to "+fqdn+" is blocked")
		return clusterSecurity{blocked: true}
	}
	sni := tls.GetSni()
	if sni == "" {
		sni = fqdn
	}
	common := &tlsv3.CommonTlsContext{TlsParams: meshTLSParams()}
	if !tls.GetInsecureSkipVerify().GetValue() {
		ca := tls.GetCaCertificates()
		if ca == "" {
			ca = systemCABundle
		}
		sans := tls.GetSubjectAltNames()
		if len(sans) == 0 {
			// Without explicit names, check the server the way any TLS client does:
			// its certificate must be for the name we asked for.
			sans = []string{sni}
		}
		vc := &tlsv3.CertificateValidationContext{TrustedCa: fileSource(ca), MatchTypedSubjectAltNames: typedSANs(sans)}
		if crl := tls.GetCaCrl(); crl != "" {
			vc.Crl = fileSource(crl)
		}
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}
	}
	if mutual {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: fileSource(tls.GetClientCertificate()),
			PrivateKey:       fileSource(tls.GetPrivateKey()),
		}}
	}
	return clusterSecurity{socket: b.tlsSocket(&tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: common})}
}

func fileSource(path string) *core.DataSource {
	return &core.DataSource{Specifier: &core.DataSource_Filename{Filename: path}}
}

// originateTLSFromSecret is SIMPLE or MUTUAL TLS origination with credentialName: as
// in Istio, the Secret is read in the namespace of the client proxy (b.credNS), never
// the DestinationRule's, and served to it over SDS as kubernetes://<name> (tls.crt,
// tls.key: MUTUAL only) and kubernetes://<name>-cacert (ca.crt of the Secret, else a
// Secret <name>-cacert: the CA that verifies the server, unless insecureSkipVerify).
// xds resolves those names in the proxy's proven namespace, and only the names of
// clusters in the proxy's own snapshot. A Secret that is missing or unusable blocks
// the cluster, with an error naming the rule, the field and the Secret.
func (b *builder) originateTLSFromSecret(dr *drRule, field string, t *networking.ClientTLSSettings, fqdn string) clusterSecurity {
	cred, ns := t.GetCredentialName(), b.credNS
	block := func(why string) clusterSecurity {
		b.diag(severityError, &dr.cfg.Meta, field+".credentialName", why+": traffic to "+fqdn+" is blocked")
		return clusterSecurity{blocked: true}
	}
	switch {
	case ns == "":
		return block("credentialName " + cred + ": no client namespace to read it in")
	case strings.ContainsAny(cred, "/:"):
		return block("credentialName " + cred + " is not a Secret name (a sidecar reads Secrets of its own namespace only)")
	}
	if t.GetClientCertificate() != "" || t.GetPrivateKey() != "" || t.GetCaCertificates() != "" {
		b.diag(severityWarning, &dr.cfg.Meta, field+".credentialName",
			"credentialName is set: clientCertificate, privateKey and caCertificates are ignored")
	}
	sni := t.GetSni()
	if sni == "" {
		sni = fqdn
	}
	common := &tlsv3.CommonTlsContext{TlsParams: meshTLSParams()}
	if t.GetMode() == networking.ClientTLSSettings_MUTUAL {
		if why := b.clientSecretProblem(ns, cred, false); why != "" {
			return block(why)
		}
		name := watch.CredentialPrefix + cred
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsSecret(name)}
		b.credentials = append(b.credentials, name)
	}
	if !t.GetInsecureSkipVerify().GetValue() {
		if why := b.clientSecretProblem(ns, cred, true); why != "" {
			return block(why)
		}
		sans := t.GetSubjectAltNames()
		if len(sans) == 0 {
			sans = []string{sni}
		}
		check := &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: typedSANs(sans)}
		if crl := t.GetCaCrl(); crl != "" {
			check.Crl = fileSource(crl)
		}
		name := watch.CredentialPrefix + cred + watch.CACertSuffix
		common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         check,
				ValidationContextSdsSecretConfig: sdsSecret(name),
			},
		}
		b.credentials = append(b.credentials, name)
	}
	return clusterSecurity{socket: b.tlsSocket(&tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: common})}
}

// clientSecretProblem says why the Secret cred of namespace ns cannot give a client
// its certificate and key (or, with ca, the CA that verifies the server); "" when it can.
// Only a Secret read for clients (--client-secret-namespaces) can: a gateway's
// credential in the same namespace is never a sidecar's.
func (b *builder) clientSecretProblem(ns, cred string, ca bool) string {
	name := watch.CredentialPrefix + cred
	what := "client certificate and key (tls.crt, tls.key)"
	if ca {
		name += watch.CACertSuffix
		what = "CA (ca.crt, or a Secret " + cred + watch.CACertSuffix + ")"
	}
	if _, _, ok := b.in.SecretFor(ns, name, watch.UseClient); ok {
		return ""
	}
	why := "no Secret " + ns + "/" + cred
	if !b.in.SecretsRead(ns, watch.UseClient) {
		why = "no Secret " + ns + "/" + cred + " for DestinationRule credentialName (wardend reads no Secrets of namespace " + ns + " for clients: add it to --client-secret-namespaces)"
	} else if sec := b.in.Secrets[ns+"/"+cred]; sec != nil {
		why = "Secret " + ns + "/" + cred + " has no usable " + what
		if sec.Err != "" {
			why += ": " + sec.Err
		}
	}
	return why + " (a sidecar reads credentialName Secrets in its own namespace, " + ns + ")"
}
