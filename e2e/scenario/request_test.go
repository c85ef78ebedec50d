package scenario

import (
	"testing"
	"time"
)

func TestRequestTarget(t *testing.T) {
	tests := []struct {
		req                 Request
		host, path, address string
	}{
		{Request{URL: "http://httpbin.foo:8000/x"}, "httpbin.foo:8000", "/x", "httpbin.foo:8000"},
		{Request{URL: "http://webapp.istioinaction/api/catalog"}, "webapp.istioinaction", "/api/catalog", "webapp.istioinaction:80"},
		{Request{URL: "https://webapp.istioinaction"}, "webapp.istioinaction", "/", "webapp.istioinaction:443"},
		{Request{URL: "http://a.b/p%20q/r?x=1&y=%2F"}, "a.b", "/p%20q/r?x=1&y=%2F", "a.b:80"},
		{Request{URL: "http://10.0.0.1:8080?q"}, "10.0.0.1:8080", "/?q", "10.0.0.1:8080"},
		{Request{URL: "http://[fd00::1]:80/"}, "[fd00::1]:80", "/", "[fd00::1]:80"},
		{Request{TCP: "echo.default:9000"}, "", "", "echo.default:9000"},
	}
	for _, tt := range tests {
		r := tt.req
		if got := r.HostHeader(); got != tt.host {
			t.Errorf("%+v HostHeader() = %q, want %q", r, got, tt.host)
		}
		if got := r.Path(); got != tt.path {
			t.Errorf("%+v Path() = %q, want %q", r, got, tt.path)
		}
		if got := r.Address(); got != tt.address {
			t.Errorf("%+v Address() = %q, want %q", r, got, tt.address)
		}
		if got, want := r.IsTCP(), r.TCP != ""; got != want {
			t.Errorf("%+v IsTCP() = %t", r, got)
		}
	}
}

func TestParseRefs(t *testing.T) {
	ref, port, err := ParsePodPort("istio-system/istio-ingressgateway:80")
	if err != nil || ref != (PodRef{"istio-system", "istio-ingressgateway"}) || port != 80 || ref.String() != "istio-system/istio-ingressgateway" {
		t.Errorf("ParsePodPort = %v %d %v", ref, port, err)
	}
	host, port, err := ParseHostPort("catalog.istioinaction:80")
	if err != nil || host != "catalog.istioinaction" || port != 80 {
		t.Errorf("ParseHostPort = %q %d %v", host, port, err)
	}
	for _, bad := range []string{"a", "a/b", "a/b:", "a/b:0", "a/b:08", "A/b:80", "a/b/c:80", "/b:80"} {
		if _, _, err := ParsePodPort(bad); err == nil {
			t.Errorf("ParsePodPort(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"a", ":80", "a:x", "a:65536"} {
		if _, _, err := ParseHostPort(bad); err == nil {
			t.Errorf("ParseHostPort(%q) accepted", bad)
		}
	}
}

func TestMaxValidityDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "24h": 24 * time.Hour, "90m": 90 * time.Minute, "1d": 0} {
		if got := (&Expect{MaxValidity: in}).MaxValidityDuration(); got != want {
			t.Errorf("MaxValidityDuration(%q) = %v, want %v", in, got, want)
		}
	}
	if got := (*Expect)(nil).MaxValidityDuration(); got != 0 {
		t.Errorf("nil MaxValidityDuration = %v", got)
	}
}
