package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, headers map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader("some body"))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEchoHandler(t *testing.T) {
	h := newHandler(appConfig{}, newForwardClient())
	resp := get(t, h, http.MethodPost, "http://webapp.istioinaction:8080/a/b?x=<1>&y=2",
		map[string]string{"Authorization": "Bearer t", "X-Multi": "v&w"})
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	// No HTML escaping: these characters appear as themselves.
	for _, want := range []string{`"query":"x=<1>&y=2"`, `"path":"/a/b"`, `"x-multi":"v&w"`} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s lacks %s", body, want)
		}
	}
	var got echoResponse
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if got.Method != http.MethodPost || got.Host != "webapp.istioinaction:8080" || got.Headers["authorization"] != "Bearer t" {
		t.Errorf("echo = %+v", got)
	}
}

func TestStaticHandler(t *testing.T) {
	h := newHandler(appConfig{Static: map[string]string{"/jwks.json": `{"keys":[]}`}}, newForwardClient())
	resp := get(t, h, http.MethodGet, "/jwks.json", nil)
	if body := readBody(t, resp); resp.StatusCode != 200 || body != `{"keys":[]}` {
		t.Errorf("static: %d %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	// Another path still echoes.
	if body := readBody(t, get(t, h, http.MethodGet, "/other", nil)); !strings.Contains(body, `"path":"/other"`) {
		t.Errorf("other path: %s", body)
	}
}

func TestForwardHandler(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/items":
			if r.Method != http.MethodGet {
				t.Errorf("upstream got %s, want GET", r.Method)
			}
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "catalog items")
		default:
			http.Error(w, "RBAC: access denied", http.StatusForbidden)
		}
	}))
	defer upstream.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/gone"
	closed.Close()

	h := newHandler(appConfig{Forward: map[string]string{
		"/ok":     upstream.URL + "/items",
		"/denied": upstream.URL + "/secret",
		"/down":   closedURL,
	}}, newForwardClient())

	resp := get(t, h, http.MethodPost, "/ok", nil)
	if body := readBody(t, resp); resp.StatusCode != http.StatusCreated || body != "catalog items" {
		t.Errorf("/ok: %d %q", resp.StatusCode, body)
	}
	resp = get(t, h, http.MethodGet, "/denied", nil)
	want := "error calling " + upstream.URL + "/secret: 403 Forbidden"
	if body := readBody(t, resp); resp.StatusCode != 500 || body != want {
		t.Errorf("/denied: %d %q, want 500 %q", resp.StatusCode, body, want)
	}
	resp = get(t, h, http.MethodGet, "/down", nil)
	if body := readBody(t, resp); resp.StatusCode != 500 || !strings.HasPrefix(body, "error calling "+closedURL+": ") {
		t.Errorf("/down: %d %q", resp.StatusCode, body)
	}
	// A sub-path is not the forwarded path.
	if body := readBody(t, get(t, h, http.MethodGet, "/ok/more", nil)); !strings.Contains(body, `"path":"/ok/more"`) {
		t.Errorf("/ok/more should echo: %s", body)
	}
}

func TestExtAuthzHandler(t *testing.T) {
	h := newHandler(appConfig{ExtAuthz: true, Static: map[string]string{"/x": "static"}}, newForwardClient())
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		for _, path := range []string{"/", "/x", "/any/path"} {
			if resp := get(t, h, method, path, map[string]string{"x-ext-authz": "allow"}); resp.StatusCode != 200 {
				t.Errorf("%s %s allowed: got %d", method, path, resp.StatusCode)
			}
			if resp := get(t, h, method, path, map[string]string{"x-ext-authz": "deny"}); resp.StatusCode != 403 {
				t.Errorf("%s %s denied: got %d", method, path, resp.StatusCode)
			}
			if resp := get(t, h, method, path, nil); resp.StatusCode != 403 {
				t.Errorf("%s %s no header: got %d", method, path, resp.StatusCode)
			}
		}
	}
}
