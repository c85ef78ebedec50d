package scenario

import (
	"path/filepath"
	"testing"
)

const externalBase = `name: ext
steps:
  - request: {from: outside, url: "http://api.partner.example/"}
    expect: {status: 200}
`

func TestExternals(t *testing.T) {
	sc := mustLoadText(t, externalBase+`externals:
  - {name: api.partner.example}
  - name: secure.partner.example
    port: 443
    tls: {certificate: c.pem, privateKey: k.pem}
`, map[string]string{"c.pem": "c", "k.pem": "k"})
	if len(sc.Externals) != 2 || sc.Externals[0].ExternalPort() != 80 || sc.Externals[1].ExternalPort() != 443 || sc.Externals[1].TLS.Certificate != "c.pem" {
		t.Fatalf("externals = %+v", sc.Externals)
	}
}

func TestExternalsRejected(t *testing.T) {
	for _, tc := range []struct{ name, ext, want string }{
		{"no name", `[{port: 80}]`, "externals[0].name: required"},
		{"no dot", `[{name: partner}]`, "at least one dot"},
		{"cluster name", `[{name: web.shop.svc.cluster.local}]`, "cluster name"},
		{"twice", `[{name: a.example}, {name: a.example}]`, "externals[1].name"},
		{"port", `[{name: a.example, port: 70000}]`, "externals[0].port"},
		{"missing cert", `[{name: a.example, tls: {certificate: nope.pem, privateKey: nope.pem}}]`, "externals[0].tls.certificate"},
		{"unknown field", `[{name: a.example, prot: 80}]`, "prot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadText(t, externalBase+"externals: "+tc.ext+"\n", nil)
			wantErr(t, err, tc.want)
		})
	}
}

func TestPathSubstitution(t *testing.T) {
	sc := mustLoadText(t, `name: p
manifests:
  - inline: "caCertificates: ${path:certs/ca.pem}"
steps:
  - request: {from: outside, url: "http://a.example/"}
    expect: {status: 200}
`, map[string]string{"certs/ca.pem": "x"})
	want := "caCertificates: " + filepath.Join(sc.Dir, "certs", "ca.pem")
	if sc.Manifests[0].Inline != want {
		t.Fatalf("inline = %q, want %q", sc.Manifests[0].Inline, want)
	}
	_, err := loadText(t, `name: p
manifests:
  - inline: "caCertificates: ${path:missing.pem}"
steps:
  - request: {from: outside, url: "http://a.example/"}
    expect: {status: 200}
`, nil)
	wantErr(t, err, "manifests[0].inline", "${path:missing.pem}")
}
