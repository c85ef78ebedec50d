package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// echoResponse is the body of the default handler.
type echoResponse struct {
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Query      string            `json:"query"`
	Host       string            `json:"host"`
	RemoteAddr string            `json:"remoteAddr"`
	Headers    map[string]string `json:"headers"`
}

// extAuthzHeader is the request header the ext_authz server checks.
const extAuthzHeader = "x-ext-authz"

// newHandler returns the HTTP handler for one workload's configuration.
func newHandler(c appConfig, client *http.Client) http.Handler {
	if c.ExtAuthz {
		return http.HandlerFunc(extAuthz)
	}
	if c.ExtAuthzGrpc {
		// Any other request (the readiness probe) gets the HTTP server's decision.
		return grpcAuthzHandler(c.ExtAuthzAllowServiceAccount, http.HandlerFunc(extAuthz))
	}
	return withDelay(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body, ok := c.Static[r.URL.Path]; ok {
			w.Header().Set("Content-Type", contentType(r.URL.Path))
			_, _ = io.WriteString(w, body)
			return
		}
		if upstream, ok := c.Forward[r.URL.Path]; ok {
			forward(w, r, client, upstream)
			return
		}
		echo(w, r)
	}))
}

// echo answers 200 with the request's method, path, query, host and headers.
func echo(w http.ResponseWriter, r *http.Request) {
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		// Lower case, as HTTP/2 and Envoy spell them, so a body check for
		// "authorization" finds the header however the caller wrote it.
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	resp := echoResponse{
		Method:     r.Method,
		Path:       r.URL.Path,
		Query:      r.URL.RawQuery,
		Host:       r.Host,
		RemoteAddr: r.RemoteAddr,
		Headers:    headers,
	}
	writeJSON(w, http.StatusOK, resp)
}

// forward calls upstream with a plain GET and relays its status and body; an error or a
// status of 400 or more becomes a 500 that names the upstream.
func forward(w http.ResponseWriter, r *http.Request, client *http.Client, upstream string) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, upstream, nil)
	if err != nil {
		forwardError(w, upstream, err.Error())
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		forwardError(w, upstream, err.Error())
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		forwardError(w, upstream, fmt.Sprintf("read body: %v", err))
		return
	}
	if resp.StatusCode >= 400 {
		forwardError(w, upstream, resp.Status)
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

func forwardError(w http.ResponseWriter, upstream, reason string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = fmt.Fprintf(w, "error calling %s: %s", upstream, reason)
}

// extAuthz allows a request exactly when it carries `x-ext-authz: allow`.
func extAuthz(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(extAuthzHeader) == "allow" {
		w.Header().Set("x-ext-authz-check-result", "allowed")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "allowed by ext_authz\n")
		return
	}
	w.Header().Set("x-ext-authz-check-result", "denied")
	w.WriteHeader(http.StatusForbidden)
	_, _ = io.WriteString(w, "denied by ext_authz\n")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func contentType(path string) string {
	if strings.HasSuffix(path, ".json") {
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}

// newForwardClient returns the client used for forwards: no proxy from the environment,
// no redirects followed, a bounded wait.
func newForwardClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
