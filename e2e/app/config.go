package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// appConfig is the per-workload behaviour from a scenario's `apps` section.
type appConfig struct {
	// Forward maps a request path to an upstream URL that is called with GET.
	Forward map[string]string `json:"forward,omitempty"`
	// Static maps a request path to a fixed response body.
	Static map[string]string `json:"static,omitempty"`
	// ExtAuthz turns every HTTP port into an ext_authz server.
	ExtAuthz bool `json:"extAuthz,omitempty"`
	// ExtAuthzGrpc turns every HTTP port into a gRPC ext_authz server
	// (envoy.service.auth.v3.Authorization over cleartext HTTP/2).
	ExtAuthzGrpc bool `json:"extAuthzGrpc,omitempty"`
	// ExtAuthzAllowServiceAccount also allows a gRPC check whose source principal is
	// this service account (`.../sa/<name>`), with or without HTTP attributes: the
	// decision Istio's sample server makes with -allow_service_account, and the only
	// way a TCP connection is allowed.
	ExtAuthzAllowServiceAccount string `json:"extAuthzAllowServiceAccount,omitempty"`
	// TCPEcho are ports the runner serves as line echo (it passes them in -tcp-ports);
	// the app accepts the field so a scenario's app section is its configuration.
	TCPEcho []int `json:"tcpEcho,omitempty"`
	// ServerFirst are line echo ports that greet first: `warden-banner <port>` on accept.
	ServerFirst []int `json:"serverFirst,omitempty"`
}

// loadConfig reads a JSON app configuration; an empty path means the default behaviour.
func loadConfig(path string) (appConfig, error) {
	var c appConfig
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read app config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("parse app config %s: %w", path, err)
	}
	return c, nil
}
