package translate

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"
	"github.com/wardenmesh/warden/watch"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestGatewayWithoutGatewayServesNothing(t *testing.T) {
	data, err := os.ReadFile("testdata/gateway-ch9-webapp.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := meshtest.Input(t, string(data))
	in.Gateways = nil // as if no Gateway existed
	out := Translate(in, Proxy{Namespace: "istio-system", Pod: "istio-ingressgateway", Gateway: true})
	if len(out.Listeners)+len(out.Routes) != 0 {
		t.Errorf("got %d listeners, %d routes", len(out.Listeners), len(out.Routes))
	}
	if len(out.Diagnostics) != 1 || out.Diagnostics[0].Severity != severityWarning || out.Diagnostics[0].Name != "istio-ingressgateway" {
		t.Errorf("diagnostics = %v, want one warning about the gateway", out.Diagnostics)
	}
}

// TestGatewayHostPortIgnored: a gateway virtual host lists only its host and the
// route configuration ignores the Host port, as Istio's gateway route configuration
// does (pilot/pkg/networking/core/gateway.go buildGatewayHTTPRouteConfig: Domains
// []string{hostname}, IgnorePortInHostMatching: !node.IsProxylessGrpc()). So
// "www.example.com:8080" reaches a "*.example.com" host, not a 404.
// HTTPS servers' route configurations (https.<port>.<server>...) do the same.
func TestGatewayHostPortIgnored(t *testing.T) {
	for _, c := range []string{"gateway-host-port", "gateway-tls", "gateway-xff-trusted-hops"} {
		testGatewayHostPortIgnored(t, c)
	}
}

func testGatewayHostPortIgnored(t *testing.T, name string) {
	out := Translate(loadCase(t, name), Proxy{Namespace: "istio-system", Pod: "istio-ingressgateway", Gateway: true})
	if len(out.Routes) < 2 && name != "gateway-host-port" {
		t.Fatalf("%s: %d routes, want the HTTP and HTTPS servers': %v", name, len(out.Routes), out.Diagnostics)
	}
	if len(out.Routes) == 0 {
		t.Fatalf("%s: no routes: %v", name, out.Diagnostics)
	}
	for _, r := range out.Routes {
		rc := r.(*route.RouteConfiguration)
		if !rc.GetIgnorePortInHostMatching() {
			t.Errorf("%s: ignore_port_in_host_matching is off", rc.GetName())
		}
		for _, vh := range rc.GetVirtualHosts() {
			for _, d := range vh.GetDomains() {
				if strings.Contains(d, ":") {
					t.Errorf("%s %s: domain %q names a port", rc.GetName(), vh.GetName(), d)
				}
			}
		}
	}
}

func TestHostCovers(t *testing.T) {
	cases := []struct {
		pattern, host string
		want          bool
	}{
		{"*", "a.b", true},
		{"*.b.com", "a.b.com", true},
		{"*.b.com", "*.x.b.com", true},
		{"*.b.com", "b.com", false},
		{"a.b.com", "a.b.com", true},
		{"a.b.com", "a.b.com:8080", false},
		{"a.b.com", "*.b.com", false},
	}
	for _, c := range cases {
		if got := hostCovers(c.pattern, c.host); got != c.want {
			t.Errorf("hostCovers(%q, %q) = %v", c.pattern, c.host, got)
		}
	}
}

// TestGatewayWeightedSplit: a route with weights becomes weighted clusters with the
// same weights.
func TestGatewayWeightedSplit(t *testing.T) {
	out := Translate(loadCase(t, "gateway-route-matches"), Proxy{Namespace: "istio-system", Pod: "istio-ingressgateway", Gateway: true})
	rc := out.Routes[0].(*route.RouteConfiguration)
	var weights []uint32
	for _, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		for _, c := range r.GetRoute().GetWeightedClusters().GetClusters() {
			weights = append(weights, c.GetWeight().GetValue())
		}
	}
	if !slices.Equal(weights, []uint32{90, 10}) {
		t.Errorf("weights = %v", weights)
	}
}

// TestGatewayTrustedHopsAnnotation: the pod annotation's gatewayTopology wins over
// MeshConfig defaultConfig, an explicit 0 included (Istio's agent applies it as JSON
// over the default); an annotation without gatewayTopology keeps the mesh's value.
func TestGatewayTrustedHopsAnnotation(t *testing.T) {
	cases := map[string]uint32{
		"gatewayTopology: {numTrustedProxies: 2}": 2,
		"gatewayTopology: {numTrustedProxies: 0}": 0,
		`{"gatewayTopology": {}}`:                 1,
		"concurrency: 2":                          1,
	}
	for ann, want := range cases {
		in := loadCase(t, "gateway-xff-annotation-overrides")
		for _, w := range in.Workloads {
			if w.Name == "istio-ingressgateway" {
				w.PodAnnotations[AnnotationProxyConfig] = ann
			}
		}
		out := Translate(in, Proxy{Namespace: "istio-system", Pod: "istio-ingressgateway", Gateway: true})
		if len(out.Listeners) != 2 {
			t.Fatalf("%q: %d listeners: %v", ann, len(out.Listeners), out.Diagnostics)
		}
		hcms := 0
		for _, l := range out.Listeners {
			for _, fc := range l.(*listener.Listener).GetFilterChains() {
				for _, f := range fc.GetFilters() {
					m := &hcm.HttpConnectionManager{}
					if f.GetTypedConfig().UnmarshalTo(m) != nil {
						continue
					}
					hcms++
					if got := m.GetXffNumTrustedHops(); got != want {
						t.Errorf("%q: %s: xff_num_trusted_hops %d, want %d", ann, fc.GetName(), got, want)
					}
				}
			}
		}
		if hcms < 2 {
			t.Errorf("%q: %d HTTP connection managers, want the HTTP and the HTTPS server's", ann, hcms)
		}
	}
}

// TestGatewayClaimNeedsGatewayPod: the gateway role is the Pod object's (label istio:
// ingressgateway), never the node metadata's claim alone. A sidecar of the gateway's
// own namespace claiming the role, selected by a Gateway with an empty selector (which
// selects every gateway), gets sidecar configuration: no Gateway listener, no
// credentialName Secret, and a warning naming its pod. The real gateway is served.
func TestGatewayClaimNeedsGatewayPod(t *testing.T) {
	data, err := os.ReadFile("testdata/gateway-tls.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := meshtest.Input(t, string(data)+`
---
apiVersion: v1
kind: Pod
metadata: {name: intruder, namespace: istio-system, labels: {app: intruder}, annotations: {warden.io/pod-ip: "10.0.9.9"}}
spec: {serviceAccountName: intruder, containers: [{name: app, image: x}]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: everyone, namespace: istio-system}
spec:
  servers:
  - port: {number: 8443, name: https-all, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: example-credential}
`)
	x := NewIndex(in)
	creds := func(out *Output) (n []string) {
		for _, s := range out.SecretNames {
			if strings.HasPrefix(s, "kubernetes://") {
				n = append(n, s)
			}
		}
		return n
	}
	gw := x.Translate(Proxy{ID: "istio-ingressgateway.istio-system", Namespace: "istio-system", Pod: "istio-ingressgateway", Gateway: true})
	if !slices.Contains(creds(gw), "kubernetes://example-credential") {
		t.Fatalf("the gateway pod was not served kubernetes://example-credential (the test proves nothing): %v", gw.SecretNames)
	}
	for _, claim := range []bool{true, false} {
		p := Proxy{ID: "intruder.istio-system", Namespace: "istio-system", Pod: "intruder", ServiceAccount: "intruder", Gateway: claim}
		if x.ServesGateway(p) {
			t.Errorf("claim %v: intruder served as a gateway", claim)
		}
		out := x.Translate(p)
		if c := creds(out); len(c) > 0 {
			t.Errorf("claim %v: intruder was given credentials %v", claim, c)
		}
		// Gateway server chains name the credential and the Gateway's route configuration.
		for _, r := range append(slices.Clone(out.Listeners), out.Routes...) {
			b, err := protojson.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "kubernetes://") || strings.Contains(string(b), "everyone.istio-system") {
				t.Errorf("claim %v: intruder got gateway configuration in %s", claim, resourceName(r))
			}
		}
		warned := slices.ContainsFunc(out.Diagnostics, func(d watch.Diagnostic) bool {
			return d.Name == "intruder" && strings.Contains(d.Message, "claims the gateway role")
		})
		if warned != claim {
			t.Errorf("claim %v: warning about the claim: %v (diagnostics %v)", claim, warned, out.Diagnostics)
		}
	}
}
