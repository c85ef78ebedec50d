package runner

import (
	"fmt"
	"testing"

	"github.com/wardenmesh/warden/internal/meshtest"

	"github.com/google/go-cmp/cmp"
)

func pod(name, ip, label string, ports string) string {
	return `apiVersion: v1
kind: Pod
metadata: {name: ` + name + `, namespace: shop, labels: {app: ` + label + `}, annotations: {warden.io/pod-ip: "` + ip + `"}}
spec: {containers: [{name: app, image: x, ports: ` + ports + `}]}
`
}

type sliceView struct {
	Name      string
	Ports     []string
	Endpoints []string
}

func viewSlices(in map[string][]sliceSpec) map[string][]sliceView {
	out := map[string][]sliceView{}
	for svc, ss := range in {
		for _, s := range ss {
			v := sliceView{Name: s.name}
			for _, p := range s.ports {
				v.Ports = append(v.Ports, fmt.Sprintf("%s=%d/%s", *p.Name, *p.Port, *p.Protocol))
			}
			for _, e := range s.endpoints {
				v.Endpoints = append(v.Endpoints, e.IP+"/"+e.Pod)
			}
			out[svc] = append(out[svc], v)
		}
	}
	return out
}

// Pods that serve a named targetPort on different numbers get different slices; a
// Service that selects nothing gets an empty slice; one without a selector none.
func TestEndpointSlicesGroupByPorts(t *testing.T) {
	in := meshtest.Input(t,
		pod("web-a", "10.0.0.2", "web", `[{name: http, containerPort: 8080}]`),
		pod("web-b", "10.0.0.3", "web", `[{name: http, containerPort: 9090}]`),
		pod("web-c", "10.0.0.4", "web", `[{name: http, containerPort: 8080}]`),
		`apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
`,
		`apiVersion: v1
kind: Service
metadata: {name: nobody, namespace: shop}
spec: {selector: {app: none}, ports: [{name: http, port: 80, targetPort: 8080}]}
`,
		`apiVersion: v1
kind: Service
metadata: {name: external, namespace: shop}
spec: {ports: [{name: http, port: 80}]}
`)
	got := viewSlices(endpointSlices(in))
	want := map[string][]sliceView{
		"shop/web": {
			{Name: "web-e2e", Ports: []string{"http=8080/TCP"}, Endpoints: []string{"10.0.0.2/web-a", "10.0.0.4/web-c"}},
			{Name: "web-e2e-1", Ports: []string{"http=9090/TCP"}, Endpoints: []string{"10.0.0.3/web-b"}},
		},
		"shop/nobody": {{Name: "nobody-e2e"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("slices (-want +got):\n%s", d)
	}
}
