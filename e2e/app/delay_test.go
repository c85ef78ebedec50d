package main

import (
	"net/http"
	"strings"
	"testing"
)

func TestDelayHeader(t *testing.T) {
	h := newHandler(appConfig{}, newForwardClient())
	if resp := get(t, h, http.MethodGet, "http://a/x", map[string]string{"x-delay": "1ms"}); resp.StatusCode != http.StatusOK {
		t.Errorf("x-delay 1ms: status %d, want 200", resp.StatusCode)
	}
	for _, bad := range []string{"soon", "-1s", "31s"} {
		resp := get(t, h, http.MethodGet, "http://a/x", map[string]string{"x-delay": bad})
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "header x-delay") {
			t.Errorf("x-delay %q: status %d body %q, want 400 naming the header", bad, resp.StatusCode, body)
		}
	}
}
