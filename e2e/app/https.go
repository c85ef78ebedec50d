package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsClient is the client side of an https request: the roots to verify the server
// with, the SNI, and an optional client certificate.
type tlsClient struct{ ca, sni, cert, key, max string }

func (t *tlsClient) config() (*tls.Config, error) {
	pemCA, err := os.ReadFile(t.ca)
	if err != nil {
		return nil, fmt.Errorf("-ca: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemCA) {
		return nil, fmt.Errorf("-ca %s: no PEM certificate", t.ca)
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: t.sni, MinVersion: tls.VersionTLS12}
	switch t.max {
	case "":
	case "1.2":
		cfg.MaxVersion = tls.VersionTLS12
	case "1.3":
		cfg.MaxVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("-tls-max %q: want 1.2 or 1.3", t.max)
	}
	if t.cert != "" {
		pair, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			return nil, fmt.Errorf("-cert/-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// serverCert is what `request` reports of the certificate an https server presented.
type serverCert struct {
	Serial   string   `json:"serial"` // hex, upper case
	DNSNames []string `json:"dnsNames,omitempty"`
	Subject  string   `json:"subject"`
}

func serverCertOf(c *x509.Certificate) *serverCert {
	return &serverCert{Serial: fmt.Sprintf("%X", c.SerialNumber), DNSNames: c.DNSNames, Subject: c.Subject.String()}
}
