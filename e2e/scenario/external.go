package scenario

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// External (format "egress") is a host outside the mesh: a pod with no sidecar, in no
// namespace of the mesh, running the default test app (HTTP echo) on Port. Every pod
// resolves Name to it, as public DNS would; nothing in the mesh knows it unless a
// ServiceEntry says so.
type External struct {
	// Name is the DNS name callers use, e.g. api.partner.example.
	Name string `json:"name"`
	// Port is the app's HTTP port; default 80.
	Port int `json:"port,omitempty"`
	// TLS, when set, makes the app serve HTTPS on Port with this certificate and key
	// (PEM files relative to the scenario file); each response carries header
	// X-Tls-Server-Name, the SNI the client sent.
	TLS *ExternalTLS `json:"tls,omitempty"`
}

// ExternalTLS is an external host's server certificate.
type ExternalTLS struct {
	Certificate string `json:"certificate"`
	PrivateKey  string `json:"privateKey"`
}

// ExternalPort is the port an external host serves on.
func (e External) ExternalPort() uint32 {
	if e.Port == 0 {
		return 80
	}
	return uint32(e.Port)
}

var dnsName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$`)

func validateExternals(p *problems, exts []External, dir string) {
	seen := map[string]int{}
	for i, e := range exts {
		path := index("externals", i)
		switch {
		case e.Name == "":
			p.add(child(path, "name"), "required")
		case !dnsName.MatchString(e.Name):
			p.add(child(path, "name"), fmt.Sprintf("%q: want a lower-case DNS name with at least one dot", e.Name))
		case strings.HasSuffix(e.Name, ".svc") || strings.Contains(e.Name, ".svc."):
			p.add(child(path, "name"), fmt.Sprintf("%q looks like a cluster name: an external host is outside the cluster", e.Name))
		}
		if first, ok := seen[e.Name]; ok && e.Name != "" {
			p.add(child(path, "name"), fmt.Sprintf("%q is also %s", e.Name, index("externals", first)))
		} else {
			seen[e.Name] = i
		}
		if e.Port < 0 || e.Port > 65535 {
			p.add(child(path, "port"), "want 1..65535")
		}
		if e.TLS != nil {
			for _, f := range []struct{ name, file string }{{"certificate", e.TLS.Certificate}, {"privateKey", e.TLS.PrivateKey}} {
				fp := child(child(path, "tls"), f.name)
				if f.file == "" {
					p.add(fp, "required")
				} else if _, err := os.Stat(filepath.Join(dir, f.file)); err != nil && !filepath.IsAbs(f.file) {
					p.add(fp, err.Error())
				}
			}
		}
	}
}
