package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// certInfo describes one certificate the server presented.
type certInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	URISANs   []string  `json:"uriSANs"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	IsCA      bool      `json:"isCA"`
}

// tlsPeerResult is what `tls-peer` prints. The top-level URISANs, NotBefore and NotAfter
// are the leaf's; Chain lists every certificate in the order the server sent them, and
// PEM holds them all, so the caller can verify the chain against its own roots.
type tlsPeerResult struct {
	NegotiatedProtocol string     `json:"negotiatedProtocol"`
	URISANs            []string   `json:"uriSANs"`
	NotBefore          time.Time  `json:"notBefore"`
	NotAfter           time.Time  `json:"notAfter"`
	Chain              []certInfo `json:"chain"`
	PEM                string     `json:"pem"`
	Error              string     `json:"error,omitempty"`
}

// tlsPeerMain performs one TLS handshake and prints what the server presented.
func tlsPeerMain(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tls-peer", flag.ContinueOnError)
	addr := fs.String("addr", "", "host:port to connect to")
	certFile := fs.String("cert", "", "client certificate chain (PEM) to present")
	keyFile := fs.String("key", "", "client private key (PEM)")
	sni := fs.String("sni", "", "server name to send")
	alpn := fs.String("alpn", "", "comma-separated ALPN protocols to offer")
	timeout := fs.Duration("timeout", 5*time.Second, "handshake deadline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		return errors.New("-addr is required")
	}
	cfg := &tls.Config{
		ServerName: *sni,
		// The server's chain is reported, not judged: the runner checks it against the
		// mesh root itself.
		InsecureSkipVerify: true, //nolint:gosec // reporting tool, see above
		MinVersion:         tls.VersionTLS12,
	}
	for _, p := range strings.Split(*alpn, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.NextProtos = append(cfg.NextProtos, p)
		}
	}
	if *certFile != "" || *keyFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return printJSON(out, tlsPeer(ctx, *addr, cfg, *timeout))
}

func tlsPeer(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) tlsPeerResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := &tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tlsPeerResult{Error: err.Error()}
	}
	defer conn.Close()
	state := conn.(*tls.Conn).ConnectionState()
	return describePeer(state)
}

func describePeer(state tls.ConnectionState) tlsPeerResult {
	res := tlsPeerResult{NegotiatedProtocol: state.NegotiatedProtocol}
	var pemText strings.Builder
	for _, c := range state.PeerCertificates {
		res.Chain = append(res.Chain, describeCert(c))
		_ = pem.Encode(&pemText, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	res.PEM = pemText.String()
	if len(res.Chain) > 0 {
		leaf := res.Chain[0]
		res.URISANs, res.NotBefore, res.NotAfter = leaf.URISANs, leaf.NotBefore, leaf.NotAfter
	}
	return res
}

func describeCert(c *x509.Certificate) certInfo {
	info := certInfo{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		URISANs:   []string{},
		NotBefore: c.NotBefore.UTC(),
		NotAfter:  c.NotAfter.UTC(),
		IsCA:      c.IsCA,
	}
	for _, u := range c.URIs {
		info.URISANs = append(info.URISANs, u.String())
	}
	return info
}
