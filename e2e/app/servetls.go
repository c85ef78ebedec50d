package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
)

// tlsServerNameHeader is the response header an HTTPS app (an external host of a
// scenario) sets to the SNI its client sent, so a scenario can check a sidecar's
// TLS origination.
const tlsServerNameHeader = "X-Tls-Server-Name"

// tlsListeners serves TLS with the given certificate on every listener.
func tlsListeners(lns []net.Listener, certFile, keyFile string) ([]net.Listener, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("-tls-cert and -tls-key go together")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	out := make([]net.Listener, 0, len(lns))
	for _, ln := range lns {
		out = append(out, tls.NewListener(ln, cfg))
	}
	return out, nil
}

// withServerName sets tlsServerNameHeader on responses to TLS requests.
func withServerName(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set(tlsServerNameHeader, r.TLS.ServerName)
		}
		h.ServeHTTP(w, r)
	})
}
