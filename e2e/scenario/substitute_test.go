package scenario

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFileSubstitution(t *testing.T) {
	sc := mustLoadText(t, `name: subst
manifests:
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: c, namespace: default}
      data: {v: "${file:files/value.txt}"}
apps:
  default/web:
    forward: {/f: "${file:files/url.txt}"}
    static: {/jwks.json: "${file:files/jwks.json}"}
steps:
  - request:
      from: outside
      url: "${file:files/url.txt}"
      headers:
        Authorization: "Bearer ${file:files/token.jwt}"
        X-Both: "${file:files/value.txt}-${file:files/value.txt}"
        X-Other: "${HOME} ${file:} $${file:files/value.txt}"
      body: "${file:files/body.json}"
    expect:
      status: 200
      bodyContains: "${file:files/value.txt}"
`, map[string]string{
		"files/value.txt": "  v1\n",
		"files/url.txt":   "http://web.default/x\n",
		"files/token.jwt": "\ttoken.with.${file:files/value.txt}\n\n",
		"files/jwks.json": "{\"keys\": []}\n",
		"files/body.json": "{\"id\": 2}",
	})
	r := sc.Steps[0].Request
	wantHeaders := map[string]string{
		"Authorization": "Bearer token.with.${file:files/value.txt}", // substituted text is not scanned again
		"X-Both":        "v1-v1",
		"X-Other":       "${HOME} ${file:} $v1", // nothing but ${file:PATH} is substituted
	}
	if diff := cmp.Diff(wantHeaders, r.Headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if r.URL != "http://web.default/x" || r.Body != `{"id": 2}` || sc.Steps[0].Expect.BodyContains != "v1" {
		t.Errorf("request = %+v, expect = %+v", r, sc.Steps[0].Expect)
	}
	app := sc.Apps["default/web"]
	if app.Forward["/f"] != "http://web.default/x" || app.Static["/jwks.json"] != `{"keys": []}` {
		t.Errorf("app = %+v", app)
	}
	wantInline := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\ndata: {v: \"v1\"}\n"
	if sc.Manifests[0].Inline != wantInline {
		t.Errorf("inline = %q, want %q", sc.Manifests[0].Inline, wantInline)
	}
}

func TestFileSubstitutionMissingFile(t *testing.T) {
	_, err := loadText(t, `name: subst
steps:
  - request:
      from: outside
      url: "http://a.b/"
      headers: {Authorization: "Bearer ${file:keys/user.jwt}"}
    expect: {status: 200}
`, nil)
	wantErr(t, err, "s.yaml: steps[0].request.headers.Authorization: ${file:keys/user.jwt}:", "keys/user.jwt: no such file or directory")
}

func TestFileSubstitutionAbsolutePath(t *testing.T) {
	dir := writeFiles(t, map[string]string{"token": "abc\n"})
	sc := mustLoadText(t, `name: subst
steps:
  - request:
      from: outside
      url: "http://a.b/"
      headers: {X-T: "${file:`+dir+`/token}"}
    expect: {status: 200}
`, nil)
	if got := sc.Steps[0].Request.Headers["X-T"]; got != "abc" {
		t.Errorf("X-T = %q, want abc", got)
	}
}
