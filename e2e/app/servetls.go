package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
)

// tlsServerNameHeader is the response header an HTTPS app (an external host of a
// scenario) sets to the SNI its client sent, so a scenario can check a sidecar's
// TLS origination.
const tlsServerNameHeader = "X-Tls-Server-Name"

// tlsClientSubjectHeader is the response header an HTTPS app started with
// -tls-client-ca sets to the subject of the client certificate it verified.
const tlsClientSubjectHeader = "X-Tls-Client-Subject"

// tlsListeners serves TLS with the given certificate on every listener. With
// clientCAFile, a client certificate is verified against that CA when one is sent (a
// certificate it did not sign fails the handshake); withServerName refuses requests
// without one.
func tlsListeners(lns []net.Listener, certFile, keyFile, clientCAFile string) ([]net.Listener, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("-tls-cert and -tls-key go together")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if clientCAFile != "" {
		pemData, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("-tls-client-ca %s: no PEM certificate", clientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	out := make([]net.Listener, 0, len(lns))
	for _, ln := range lns {
		out = append(out, tls.NewListener(ln, cfg))
	}
	return out, nil
}

// withServerName sets tlsServerNameHeader on responses to TLS requests and, with
// requireClientCert, tlsClientSubjectHeader, answering 403 "client certificate
// required" to a TLS request without a verified client certificate (except /healthz,
// the runner's readiness check).
func withServerName(h http.Handler, requireClientCert bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set(tlsServerNameHeader, r.TLS.ServerName)
			if requireClientCert {
				if len(r.TLS.VerifiedChains) == 0 {
					if r.URL.Path != "/healthz" {
						http.Error(w, "client certificate required", http.StatusForbidden)
						return
					}
				} else {
					w.Header().Set(tlsClientSubjectHeader, r.TLS.VerifiedChains[0][0].Subject.String())
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}
