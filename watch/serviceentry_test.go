package watch

import (
	"os"
	"strings"
	"testing"
)

// Online Boutique's egress ServiceEntries decode without any diagnostic.
func TestServiceEntryOnlineBoutique(t *testing.T) {
	data, err := os.ReadFile("../e2e/scenarios/egress-testdata/allow-egress-googleapis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, diags := DecodeFile("allow-egress-googleapis.yaml", data)
	if len(diags) != 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	if len(objs) != 2 || objs[0].Kind != "ServiceEntry" {
		t.Fatalf("objects = %v", objs)
	}
}

func TestServiceEntryValidation(t *testing.T) {
	for _, tc := range []struct{ name, spec, field, msg string }{
		{"no hosts", `{ports: [{number: 80, name: http}]}`, "spec.hosts", "at least one host"},
		{"star host", `{hosts: ["*"], ports: [{number: 80, name: http}]}`, "spec.hosts[0]", "every destination"},
		{"bad host", `{hosts: ["a b"], ports: [{number: 80, name: http}]}`, "spec.hosts[0]", "invalid host"},
		{"bad address", `{hosts: [a.example], addresses: [10.0.0.300], ports: [{number: 80, name: http}]}`, "spec.addresses[0]", "invalid address"},
		{"port zero", `{hosts: [a.example], ports: [{number: 0, name: http}]}`, "spec.ports[0].number", "1..65535"},
		{"dup port", `{hosts: [a.example], ports: [{number: 80, name: a}, {number: 80, name: b}]}`, "spec.ports[1].number", "twice"},
		{"no port name", `{hosts: [a.example], ports: [{number: 80}]}`, "spec.ports[0].name", "needs a name"},
		{"bad protocol", `{hosts: [a.example], ports: [{number: 80, name: a, protocol: QUIC}]}`, "spec.ports[0].protocol", "unknown protocol"},
		{"static no endpoints", `{hosts: [a.example], resolution: STATIC, ports: [{number: 80, name: a}]}`, "spec.endpoints", "STATIC needs"},
		{"static hostname", `{hosts: [a.example], resolution: STATIC, endpoints: [{address: b.example}], ports: [{number: 80, name: a}]}`, "spec.endpoints[0].address", "IP addresses"},
		{"dns wildcard", `{hosts: ["*.a.example"], resolution: DNS, ports: [{number: 80, name: a}]}`, "spec.hosts[0]", "wildcard"},
		{"rr two", `{hosts: [a.example], resolution: DNS_ROUND_ROBIN, endpoints: [{address: b.example}, {address: c.example}], ports: [{number: 80, name: a}]}`, "spec.endpoints", "at most one"},
		{"selector and endpoints", `{hosts: [a.example], resolution: STATIC, workloadSelector: {labels: {app: a}}, endpoints: [{address: 10.0.0.1}], ports: [{number: 80, name: a}]}`, "spec", "only one of"},
		{"endpoint port name", `{hosts: [a.example], resolution: STATIC, endpoints: [{address: 10.0.0.1, ports: {b: 8080}}], ports: [{number: 80, name: a}]}`, "spec.endpoints[0].ports[b]", "no port"},
		{"dynamic dns", `{hosts: [a.example], resolution: DYNAMIC_DNS, ports: [{number: 80, name: a}]}`, "spec.resolution", "ambient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se, namespace: ns}\nspec: " + tc.spec + "\n"
			objs, diags := DecodeFile("se.yaml", []byte(doc))
			if len(objs) != 0 {
				t.Errorf("accepted: %v", objs)
			}
			for _, d := range diags {
				if d.Field == tc.field && strings.Contains(d.Message, tc.msg) && d.Kind == "ServiceEntry" && d.Name == "se" && d.IsError() {
					return
				}
			}
			t.Errorf("want an error on %s containing %q, got %v", tc.field, tc.msg, diags)
		})
	}
}
