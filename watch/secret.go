package watch

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Secret is the TLS material of one Kubernetes Secret, as an ingress gateway's
// credentialName uses it (Istio's formats, pilot/pkg/model/credentials and the
// secret controller): tls.crt/tls.key (kubernetes.io/tls) or cert/key (generic),
// and the CA that verifies clients in ca.crt or cacert. Key material never leaves
// the xds package's SDS answers; diagnostics and describe show only Cert's metadata.
type Secret struct {
	Meta
	CertChainPEM []byte // empty when the Secret holds only a CA
	KeyPEM       []byte
	CAPEM        []byte // empty when the Secret has no CA
	// Cert describes the leaf of CertChainPEM.
	Cert *CertInfo
	// Err says why the material cannot be served (no certificate, key does not match,
	// unparsable PEM); the Secret is then never served.
	Err string
	// Uses are what its namespace's Secrets were read for (Input.SetSecretUses):
	// SecretFor serves it only for these. Build sets both (directory mode).
	Uses SecretUse
}

// SecretUse is what a Secret may be served for: a bit set.
type SecretUse uint8

const (
	// UseGateway: a Gateway server's credentialName, to a gateway proxy of the
	// Secret's namespace (--gateway-secret-namespaces).
	UseGateway SecretUse = 1 << iota
	// UseClient: a DestinationRule's credentialName, to a sidecar (or gateway) of the
	// Secret's namespace originating TLS (--client-secret-namespaces).
	UseClient
)

// String names the flag that grants the use, for diagnostics.
func (u SecretUse) String() string {
	switch u {
	case UseGateway:
		return "gateway"
	case UseClient:
		return "client"
	}
	return "none"
}

// CertInfo is what describe shows of a certificate: never key material.
type CertInfo struct {
	Serial   string    `json:"serial"` // hex, as openssl prints it
	NotAfter time.Time `json:"notAfter"`
	DNSNames []string  `json:"dnsNames,omitempty"`
	URIs     []string  `json:"uris,omitempty"`
	Subject  string    `json:"subject"`
}

// secretsOf reads the Secrets, keyed "namespace/name". A Secret with none of the
// keys above is not a TLS Secret and is left out.
func secretsOf(objs []Object) map[string]*Secret {
	out := map[string]*Secret{}
	for _, o := range objs {
		s, ok := o.Spec.(*corev1.Secret)
		if !ok {
			continue
		}
		if sec := tlsSecretOf(o.Meta, s); sec != nil {
			sec.Uses = UseGateway | UseClient
			out[o.Key()] = sec
		}
	}
	return out
}

func tlsSecretOf(m Meta, s *corev1.Secret) *Secret {
	get := func(keys ...string) []byte {
		for _, k := range keys {
			if v, ok := s.StringData[k]; ok {
				return []byte(v)
			}
			if v, ok := s.Data[k]; ok {
				return v
			}
		}
		return nil
	}
	cert, key := get("tls.crt", "cert"), get("tls.key", "key")
	ca := get("ca.crt", "cacert")
	if cert == nil && key == nil && ca == nil {
		return nil
	}
	sec := &Secret{Meta: m, CertChainPEM: cert, KeyPEM: key, CAPEM: ca}
	var errs []string
	switch {
	case cert == nil && key == nil:
	case cert == nil || key == nil:
		errs = append(errs, "has a certificate or a key but not both (want tls.crt and tls.key)")
	default:
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			errs = append(errs, "tls.crt/tls.key: "+err.Error())
		} else if leaf, err := x509.ParseCertificate(pair.Certificate[0]); err != nil {
			errs = append(errs, "tls.crt: "+err.Error())
		} else {
			sec.Cert = certInfo(leaf)
		}
	}
	if ca != nil {
		if err := checkCAPEM(ca); err != nil {
			errs = append(errs, "ca.crt: "+err.Error())
		}
	}
	sec.Err = strings.Join(errs, "; ")
	return sec
}

func certInfo(c *x509.Certificate) *CertInfo {
	ci := &CertInfo{Serial: fmt.Sprintf("%X", c.SerialNumber), NotAfter: c.NotAfter.UTC(), DNSNames: c.DNSNames, Subject: c.Subject.String()}
	for _, u := range c.URIs {
		ci.URIs = append(ci.URIs, u.String())
	}
	return ci
}

func checkCAPEM(b []byte) error {
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate")
	}
	return nil
}

// SecretFor resolves an SDS name of Istio's credential form in namespace ns, for use
// (a gateway's credentialName, or a DestinationRule's; with both bits, either): "kubernetes://<name>" is the
// Secret's certificate and key, and "kubernetes://<name>-cacert" its CA: ca.crt of
// <name> itself, else the Secret <name>-cacert (Istio's two MUTUAL formats). A Secret
// whose namespace was not read for use is never returned. ok is false when nothing can
// be served.
func (in *Input) SecretFor(ns, sdsName string, use SecretUse) (sec *Secret, ca bool, ok bool) {
	name, found := strings.CutPrefix(sdsName, CredentialPrefix)
	if !found || name == "" || use == 0 {
		return nil, false, false
	}
	get := func(key string) *Secret {
		if s := in.Secrets[key]; s != nil && s.Err == "" && s.Uses&use != 0 {
			return s
		}
		return nil
	}
	if base, isCA := strings.CutSuffix(name, CACertSuffix); isCA {
		if s := get(ns + "/" + base); s != nil && len(s.CAPEM) > 0 {
			return s, true, true
		}
		if s := get(ns + "/" + name); s != nil && len(s.CAPEM) > 0 {
			return s, true, true
		}
		return nil, false, false
	}
	if s := get(ns + "/" + name); s != nil && s.Cert != nil {
		return s, false, true
	}
	return nil, false, false
}

// The credential SDS name forms (pilot/pkg/model/credentials: KubernetesSecretTypeURI,
// SdsCaSuffix).
const (
	CredentialPrefix = "kubernetes://"
	CACertSuffix     = "-cacert"
)
