package authz_test

import (
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/translate/authz"
)

// gatewayManifests add an ingress gateway serving foo.example.com on port 80, with
// policies that select it: a request principal for GET, nothing for other methods
// but admins.
const gatewayManifests = `
apiVersion: v1
kind: Pod
metadata: {name: ingress, namespace: istio-system, labels: {app: istio-ingressgateway, istio: ingressgateway}, annotations: {warden.io/pod-ip: "10.0.2.2"}}
spec: {serviceAccountName: ingress, containers: [{name: istio-proxy, image: envoy, ports: [{containerPort: 80}]}]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: foo}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["foo.example.com"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {app: istio-ingressgateway}}
  action: DENY
  rules: [{from: [{source: {notRequestPrincipals: ["*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: users-get, namespace: istio-system}
spec:
  selector: {matchLabels: {app: istio-ingressgateway}}
  rules:
  - to: [{operation: {methods: ["GET"], ports: ["80"]}}]
  - from: [{source: {ipBlocks: ["10.0.3.0/24"]}}]
    when: [{key: "request.auth.claims[group]", values: ["admin"]}]
`

func TestCheckGateway(t *testing.T) {
	in := meshtest.InputAllowingErrors(t, meshtest.Httpbin, gatewayManifests)
	ingress := translate.Proxy{ID: "ingress.istio-system", Namespace: "istio-system", Pod: "ingress", Gateway: true}
	user := map[string]any{"iss": "idp", "sub": "u"}
	admin := map[string]any{"iss": "idp", "sub": "a", "group": "admin"}
	for _, tc := range []struct {
		name     string
		proxy    translate.Proxy
		req      authz.CheckRequest
		decision string
		refused  bool
	}{
		{"no token is denied", ingress, authz.CheckRequest{SourceIP: "10.0.3.1"}, "DENY", false},
		{"a user may GET on the server port", ingress, authz.CheckRequest{SourceIP: "10.0.3.1", Claims: user}, "ALLOW", false},
		{"a user may not POST", ingress, authz.CheckRequest{SourceIP: "10.0.3.1", Method: "POST", Claims: user}, "DENY", false},
		{"an admin may POST from the allowed block", ingress, authz.CheckRequest{SourceIP: "10.0.3.1", Method: "POST", Claims: admin}, "ALLOW", false},
		{"an admin may not POST from elsewhere", ingress, authz.CheckRequest{SourceIP: "10.0.4.1", Method: "POST", Claims: admin}, "DENY", false},
		// A caller's mesh identity does not reach the gateway: its listener is plaintext.
		{"a sidecar caller has no principal", ingress, authz.CheckRequest{FromPod: "sleep.foo", Method: "POST", Claims: admin}, "DENY", false},
		{"no server on the port", ingress, authz.CheckRequest{Port: 8080, Claims: user}, "DENY", true},
		{"known as a gateway from its labels", translate.Proxy{ID: "ingress.istio-system", Namespace: "istio-system", Pod: "ingress"},
			authz.CheckRequest{SourceIP: "10.0.3.1", Claims: user}, "ALLOW", false},
	} {
		got := translate.Check(in, tc.proxy, tc.req)
		if got.Decision != tc.decision || got.ConnectionRefused != tc.refused || got.Port == 0 && !tc.refused || got.Principal != "" {
			t.Errorf("%s: got %+v, want %s (refused %v)", tc.name, got, tc.decision, tc.refused)
		}
	}
}
