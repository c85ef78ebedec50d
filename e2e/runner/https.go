package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wardenmesh/warden/e2e/scenario"
)

// tlsArgs are the `request` flags of request.tls (format 1.1, gateway TLS): the
// files resolved against the scenario's directory.
func (w *world) tlsArgs(t *scenario.RequestTLS) ([]string, error) {
	if t == nil {
		return nil, nil
	}
	abs := func(field, p string) (string, error) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(w.sc.Dir, p)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("request.tls.%s: %v", field, err)
		}
		return p, nil
	}
	ca, err := abs("ca", t.CA)
	if err != nil {
		return nil, err
	}
	args := []string{"-ca", ca}
	if t.SNI != "" {
		args = append(args, "-sni", t.SNI)
	}
	if t.MaxVersion != "" {
		args = append(args, "-tls-max", t.MaxVersion)
	}
	if t.ClientCert != "" {
		cert, err := abs("clientCert", t.ClientCert)
		if err != nil {
			return nil, err
		}
		key, err := abs("clientKey", t.ClientKey)
		if err != nil {
			return nil, err
		}
		args = append(args, "-cert", cert, "-key", key)
	}
	return args, nil
}

// checkServerCert compares expect.serverCertificate with what the client saw; out
// is the client's raw output (harness.Result does not carry the certificate).
func checkServerCert(want *scenario.ServerCertificate, out []byte) (bool, string, string) {
	var res struct {
		ServerCert *struct {
			Serial   string   `json:"serial"`
			DNSNames []string `json:"dnsNames"`
		} `json:"serverCert"`
	}
	_ = json.Unmarshal(out, &res)
	var wants []string
	if want.Serial != "" {
		wants = append(wants, "server certificate serial "+strings.ToUpper(want.Serial))
	}
	if want.DNSSAN != "" {
		wants = append(wants, "server certificate DNS SAN "+want.DNSSAN)
	}
	c := res.ServerCert
	if c == nil {
		return false, strings.Join(wants, ", "), "no server certificate"
	}
	pass := (want.Serial == "" || strings.EqualFold(strings.TrimLeft(want.Serial, "0"), strings.TrimLeft(c.Serial, "0"))) &&
		(want.DNSSAN == "" || slices.Contains(c.DNSNames, want.DNSSAN))
	return pass, strings.Join(wants, ", "), "server certificate serial " + c.Serial + " DNS SANs " + strings.Join(c.DNSNames, ",")
}
