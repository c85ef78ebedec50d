package xds

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	"github.com/wardenmesh/warden/translate/authz"
)

func TestAuthzCheckHandler(t *testing.T) {
	s := New(Options{})
	s.SetInput(meshtest.Input(t, `apiVersion: v1
kind: Namespace
metadata: {name: foo, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: foo, labels: {app: web}}
spec:
  serviceAccountName: web
  containers: [{name: app, image: x, ports: [{name: http, containerPort: 8080}]}]
`, meshtest.AuthorizationPolicy("catalog", "foo", `{rules: [{to: [{operation: {paths: ["/api/catalog*"]}}]}]}`)))

	for _, tc := range []struct {
		path, decision string
	}{{"/api/catalog/items", "ALLOW"}, {"/hello/world", "DENY"}} {
		q, err := AuthzQuery("web.foo", authz.CheckRequest{Principal: "cluster.local/ns/foo/sa/sleep", Path: tc.path,
			Headers: map[string]string{"x-a": "b"}, Claims: map[string]any{"sub": "u"}})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		s.AuthzCheckHandler(rec, httptest.NewRequest(http.MethodGet, "/debug/authz?"+q.Encode(), nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", tc.path, rec.Code, rec.Body)
		}
		var resp AuthzCheckResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Result.Decision != tc.decision || resp.Request.Headers["x-a"] != "b" || resp.Request.Claims["sub"] != "u" {
			t.Errorf("%s: got %+v", tc.path, resp)
		}
	}

	for _, bad := range []string{"/debug/authz?proxy=nodot", "/debug/authz?proxy=ghost.foo", "/debug/authz?proxy=web.foo&port=x"} {
		rec := httptest.NewRecorder()
		s.AuthzCheckHandler(rec, httptest.NewRequest(http.MethodGet, bad, nil))
		if rec.Code == http.StatusOK {
			t.Errorf("%s: status 200, want an error", bad)
		}
	}
}
