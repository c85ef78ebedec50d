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

// originateTLS is SIMPLE or MUTUAL TLS with certificates from files on the proxy.
//
// credentialName (certificates from a Kubernetes Secret) is for gateways; on a sidecar
// Warden cannot honour it, and a MUTUAL rule without a client certificate cannot be
// honoured either. Both fail closed: the cluster gets no endpoints, so requests fail
// instead of silently going out in plaintext or with weaker TLS than asked for.
func (b *builder) originateTLS(dr *drRule, field string, tls *networking.ClientTLSSettings, fqdn string) clusterSecurity {
	mutual := tls.GetMode() == networking.ClientTLSSettings_MUTUAL
	switch {
	case tls.GetCredentialName() != "":
		b.diag(severityError, &dr.cfg.Meta, field+".credentialName",
			"credentialName is not supported for sidecars (use file paths): traffic to "+fqdn+" is blocked")
		return clusterSecurity{blocked: true}
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
