package translate

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// envoyCipherSuites are the cipher suite names a stock Envoy (BoringSSL) accepts in
// TlsParameters.cipher_suites for TLS 1.2 and below, the list Istio's
// security.ValidCipherSuites checks a gateway server's cipherSuites against. A name
// Envoy does not know makes it reject the whole listener, so every server of the
// port would stop: Warden refuses only the server that names it.
var envoyCipherSuites = map[string]bool{
	"ECDHE-ECDSA-AES128-GCM-SHA256": true, "ECDHE-RSA-AES128-GCM-SHA256": true,
	"ECDHE-ECDSA-AES256-GCM-SHA384": true, "ECDHE-RSA-AES256-GCM-SHA384": true,
	"ECDHE-ECDSA-CHACHA20-POLY1305": true, "ECDHE-RSA-CHACHA20-POLY1305": true,
	"ECDHE-PSK-CHACHA20-POLY1305": true,
	"ECDHE-ECDSA-AES128-SHA":      true, "ECDHE-RSA-AES128-SHA": true, "ECDHE-PSK-AES128-CBC-SHA": true,
	"ECDHE-ECDSA-AES256-SHA": true, "ECDHE-RSA-AES256-SHA": true, "ECDHE-PSK-AES256-CBC-SHA": true,
	"AES128-GCM-SHA256": true, "AES256-GCM-SHA384": true, "AES128-SHA": true, "PSK-AES128-CBC-SHA": true,
	"AES256-SHA": true, "PSK-AES256-CBC-SHA": true, "DES-CBC3-SHA": true,
}

// validCipherSuite accepts a known name or an equal-preference group of known names,
// "[A|B]", as BoringSSL's cipher strings allow.
func validCipherSuite(s string) bool {
	if inner, ok := strings.CutPrefix(s, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok || inner == "" {
			return false
		}
		for _, c := range strings.Split(inner, "|") {
			if !envoyCipherSuites[c] {
				return false
			}
		}
		return true
	}
	return envoyCipherSuites[s]
}

// checkCipherSuites reports the first cipherSuites entry Envoy would reject.
func (b *builder) checkCipherSuites(s gatewayServer, field string, suites []string) bool {
	for i, c := range suites {
		if !validCipherSuite(c) {
			b.diag(severityError, &s.gw.Meta, field+".cipherSuites["+strconv.Itoa(i)+"]",
				"server "+serverLabel(s)+": "+strconv.Quote(c)+" is not a cipher suite Envoy supports: server refuses connections")
			return false
		}
	}
	return true
}

// checkSpki reports the first verifyCertificateSpki entry that is not a base64
// SHA-256 digest (44 characters, 32 bytes), which Envoy would reject with the listener.
func (b *builder) checkSpki(s gatewayServer, field string, pins []string) bool {
	for i, p := range pins {
		raw, err := base64.StdEncoding.DecodeString(p)
		if err != nil || len(raw) != 32 {
			b.diag(severityError, &s.gw.Meta, field+".verifyCertificateSpki["+strconv.Itoa(i)+"]",
				"server "+serverLabel(s)+": not a base64 SHA-256 digest of a SubjectPublicKeyInfo: server refuses connections")
			return false
		}
	}
	return true
}
