package translate

import (
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/wardenmesh/warden/watch"
)

func destRule(ns, name, host string, sel map[string]string, exportTo ...string) *watch.Config[*networking.DestinationRule] {
	spec := &networking.DestinationRule{Host: host, ExportTo: exportTo}
	if sel != nil {
		spec.WorkloadSelector = &typev1beta1.WorkloadSelector{MatchLabels: sel}
	}
	return &watch.Config[*networking.DestinationRule]{
		Meta: watch.Meta{Kind: "DestinationRule", Namespace: ns, Name: name},
		Spec: spec,
	}
}

func TestDestinationRuleLookup(t *testing.T) {
	const host = "catalog.bar.svc.cluster.local"
	web := map[string]string{"app": "web"}
	type dr = *watch.Config[*networking.DestinationRule]
	cases := []struct {
		name    string
		rules   []dr // oldest first
		proxyNS string
		want    string // "ns/name" or ""
	}{
		{name: "none", want: ""},
		{
			name:  "short host is relative to the rule's namespace",
			rules: []dr{destRule("foo", "wrong-ns", "catalog", nil), destRule("bar", "right", "catalog", nil)},
			want:  "bar/right",
		},
		{
			name:  "proxy namespace beats service namespace beats root",
			rules: []dr{destRule("istio-system", "root", "*", nil), destRule("bar", "svc", "catalog", nil), destRule("foo", "proxy", host, nil)},
			want:  "foo/proxy",
		},
		{
			name:  "service namespace beats root",
			rules: []dr{destRule("istio-system", "root", host, nil), destRule("bar", "svc", "*.bar.svc.cluster.local", nil)},
			want:  "bar/svc",
		},
		{
			name:  "root namespace wildcard applies last",
			rules: []dr{destRule("istio-system", "root", "*", nil), destRule("other", "x", "*", nil)},
			want:  "istio-system/root",
		},
		{
			name:  "exact beats wildcard within a namespace, regardless of age",
			rules: []dr{destRule("bar", "wild", "*.svc.cluster.local", nil), destRule("bar", "star", "*", nil), destRule("bar", "exact", "catalog", nil)},
			want:  "bar/exact",
		},
		{
			name:  "longer wildcard beats shorter",
			rules: []dr{destRule("bar", "short", "*.cluster.local", nil), destRule("bar", "long", "*.bar.svc.cluster.local", nil)},
			want:  "bar/long",
		},
		{
			name:  "oldest wins among equal hosts",
			rules: []dr{destRule("bar", "old", "catalog", nil), destRule("bar", "new", "catalog", nil)},
			want:  "bar/old",
		},
		{
			name:  "exportTo . hides a rule from other namespaces",
			rules: []dr{destRule("bar", "private", "catalog", nil, "."), destRule("istio-system", "root", "*", nil)},
			want:  "istio-system/root",
		},
		{
			name:  "exportTo naming the proxy namespace",
			rules: []dr{destRule("bar", "shared", "catalog", nil, "foo")},
			want:  "bar/shared",
		},
		{
			name:  "selector rule applies to matching proxies of its namespace first",
			rules: []dr{destRule("foo", "all", host, nil), destRule("foo", "web-only", "*", web)},
			want:  "foo/web-only",
		},
		{
			name:  "selector rule in another namespace is ignored",
			rules: []dr{destRule("bar", "web-only", "catalog", web)},
			want:  "",
		},
		{
			// Istio tests the workloadSelector for nil (pilot/pkg/model/sidecar.go).
			name:  "empty workloadSelector is a selector rule for every proxy of its namespace",
			rules: []dr{destRule("foo", "all", host, nil), destRule("foo", "empty-selector", host, map[string]string{})},
			want:  "foo/empty-selector",
		},
		{
			name:  "empty workloadSelector in another namespace is private to it",
			rules: []dr{destRule("bar", "empty-selector", "catalog", map[string]string{})},
			want:  "",
		},
		{
			name:  "selector rule not matching is ignored",
			rules: []dr{destRule("foo", "api-only", host, map[string]string{"app": "api"})},
			want:  "",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &watch.Input{RootNamespace: "istio-system", DomainSuffix: "cluster.local", DestinationRules: tc.rules}
			r := newDRIndex(in).lookup("foo", web, "bar", host)
			got := ""
			if r != nil {
				got = r.cfg.Key()
			}
			if got != tc.want {
				t.Errorf("lookup = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDestinationRulePortLevelTLS follows istio/istio pilot/pkg/networking/util/
// util.go GetPortLevelTrafficPolicy: "port level policies do not inherit and instead
// [fall back] to defaults if not provided", so a port entry without tls has no TLS
// settings (auto mTLS), and the top level applies only to ports without an entry.
func TestDestinationRulePortLevelTLS(t *testing.T) {
	r := &drRule{cfg: destRule("bar", "catalog", "catalog", nil)}
	r.cfg.Spec.TrafficPolicy = &networking.TrafficPolicy{
		Tls: &networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_SIMPLE},
		PortLevelSettings: []*networking.TrafficPolicy_PortTrafficPolicy{
			{Port: &networking.PortSelector{Number: 80}, Tls: &networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_DISABLE}},
			{Port: &networking.PortSelector{Number: 90}}, // no tls: defaults, not the top level
		},
	}
	for port, want := range map[uint32]string{80: "DISABLE", 90: "none", 8080: "SIMPLE"} {
		tls, field := r.tlsFor(port)
		got := "none"
		if tls != nil {
			got = tls.GetMode().String()
		}
		if got != want {
			t.Errorf("port %d: mode %s (%s), want %s", port, got, field, want)
		}
	}
	var none *drRule
	if tls, _ := none.tlsFor(80); tls != nil {
		t.Errorf("no rule: got %v", tls)
	}
}

func TestPortProtocol(t *testing.T) {
	for _, tc := range []struct {
		port      uint32
		name, app string
		want      protocol
	}{
		{80, "http", "", protoHTTP}, {80, "HTTP-web", "", protoHTTP}, {80, "http_proxy", "", protoHTTP},
		{80, "http2", "", protoHTTP2}, {80, "grpc", "", protoHTTP2}, {80, "grpc-web", "", protoHTTP2},
		{80, "grpc-web-x", "", protoHTTP2}, {80, "grpcx", "", protoAuto},
		{80, "", "", protoAuto}, {80, "web", "", protoAuto}, {5432, "postgres", "", protoAuto},
		{80, "tcp", "", protoTCP}, {80, "tcp-db", "", protoTCP}, {80, "mongo", "", protoTCP}, {80, "mysql-main", "", protoTCP},
		{80, "redis", "", protoTCP}, {80, "https", "", protoTCP}, {80, "tls-x", "", protoTCP}, {80, "thrift", "", protoTCP},
		{3306, "", "", protoTCP}, {3306, "db", "", protoTCP}, {3306, "http", "", protoHTTP},
		// appProtocol wins over the name, whatever it says.
		{80, "http", "tcp", protoTCP}, {80, "tcp", "http", protoHTTP}, {80, "tcp", "HTTP2", protoHTTP2},
		{80, "tcp", "postgresql", protoAuto}, {80, "x", "kubernetes.io/h2c", protoHTTP2},
		{80, "tcp", "kubernetes.io/ws", protoHTTP}, {80, "http", "kubernetes.io/wss", protoTCP},
	} {
		if got := portProtocol(tc.port, tc.name, tc.app); got != tc.want {
			t.Errorf("portProtocol(%d, %q, %q) = %v, want %v", tc.port, tc.name, tc.app, got, tc.want)
		}
	}
}
