package translate

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
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
