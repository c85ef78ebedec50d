package scenario

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// hexSerial is a certificate serial as openssl prints it, without colons.
var hexSerial = regexp.MustCompile(`^[0-9A-Fa-f]+$`)

// validateRequestTLS checks request.tls (format 1.1, gateway TLS): only for https://
// URLs, a CA is required, and a client certificate comes with its key. Whether the
// files exist is checked when the step runs, relative to the scenario file.
func validateRequestTLS(p *problems, path string, r *Request) {
	t := r.TLS
	if t == nil {
		return
	}
	if u, err := url.Parse(r.URL); err == nil && u.Scheme != "https" {
		p.add(path, "only for https:// URLs")
	}
	if t.CA == "" {
		p.add(child(path, "ca"), "required: the PEM file of the roots the server must chain to")
	}
	if (t.ClientCert == "") != (t.ClientKey == "") {
		p.add(path, "clientCert and clientKey go together")
	}
	if t.MaxVersion != "" && t.MaxVersion != "1.2" && t.MaxVersion != "1.3" {
		p.add(child(path, "maxVersion"), fmt.Sprintf("%q: want 1.2 or 1.3", t.MaxVersion))
	}
	if strings.ContainsAny(t.SNI, " /:\x00") {
		p.add(child(path, "sni"), fmt.Sprintf("%q is not a server name", t.SNI))
	}
}

// validateServerCertificate checks expect.serverCertificate: an https:// request that
// expects a response, and at least one check.
func validateServerCertificate(p *problems, path string, r *Request, e *Expect) {
	sc := e.ServerCertificate
	if sc == nil {
		return
	}
	if u, err := url.Parse(r.URL); err == nil && u.Scheme != "https" {
		p.add(path, "only for https:// URLs")
	}
	if e.ConnectionError {
		p.add(path, "needs a response; remove it or expect a status")
	}
	if sc.Serial == "" && sc.DNSSAN == "" {
		p.add(path, "needs serial or dnsSAN")
	}
	if sc.Serial != "" && !hexSerial.MatchString(sc.Serial) {
		p.add(child(path, "serial"), fmt.Sprintf("%q: want hex digits, no colons", sc.Serial))
	}
}
