package watch

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const meshApp = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: app}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: admin, port: 9000}
  - {name: metrics, port: 9100, targetPort: 9101}
---
apiVersion: v1
kind: Service
metadata: {name: all, namespace: app}
spec:
  selector: {tier: front}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: none, namespace: app}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: app, labels: {app: web, tier: front}}
spec:
  serviceAccountName: web
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8081}]}]
status: {podIP: 10.0.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: app, labels: {app: web, tier: front}}
spec:
  serviceAccountName: web
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 10.0.0.9}
---
apiVersion: v1
kind: Pod
metadata: {name: web-pending, namespace: app, labels: {app: web}}
spec:
  serviceAccountName: web-canary
  containers: [{name: c, image: x}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-other, namespace: other, labels: {app: web}}
spec:
  containers: [{name: c, image: x}]
status: {podIP: 10.0.1.1}
`

func TestServiceLookups(t *testing.T) {
	in := build(t, meshApp)
	web := in.ServiceByHost("web.app.svc.cluster.local")
	if web == nil || in.Hostname(web) != "web.app.svc.cluster.local" {
		t.Fatalf("ServiceByHost = %v", web)
	}
	if got := web.Ports[0]; got.TargetPort != 0 || got.TargetPortName != "http" {
		t.Errorf("named targetPort = %+v", got)
	}
	if got := web.Ports[1]; got.TargetPort != 9000 || got.Protocol != "TCP" {
		t.Errorf("absent targetPort = %+v", got)
	}
	if got := web.Ports[2]; got.TargetPort != 9101 {
		t.Errorf("numeric targetPort = %+v", got)
	}

	var names []string
	for _, s := range in.ServicesSelecting("app", map[string]string{"app": "web", "tier": "front"}) {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{"all", "web"}, names); diff != "" {
		t.Errorf("ServicesSelecting (-want +got):\n%s", diff)
	}
	if got := in.ServicesSelecting("other", map[string]string{"app": "web"}); len(got) != 0 {
		t.Errorf("services of another namespace selected: %v", got)
	}

	if diff := cmp.Diff([]string{"web", "web-canary"}, in.ServiceAccountsOf(web)); diff != "" {
		t.Errorf("ServiceAccountsOf (-want +got):\n%s", diff)
	}
	if got := in.ServiceAccountsOf(in.ServiceByHost("none.app.svc.cluster.local")); len(got) != 0 {
		t.Errorf("selector-less service has accounts %v", got)
	}
}

func TestEndpointsFromSelector(t *testing.T) {
	in := build(t, meshApp)
	web := in.ServiceByHost("web.app.svc.cluster.local")
	got := endpointsOf(in.Endpoints(web, web.Ports[0]))
	want := []string{"web-1 10.0.0.9:8080", "web-2 10.0.0.10:8081"} // numeric IP order, named port per pod
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("named port endpoints (-want +got):\n%s", diff)
	}
	got = endpointsOf(in.Endpoints(web, web.Ports[2]))
	want = []string{"web-1 10.0.0.9:9101", "web-2 10.0.0.10:9101"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("numeric port endpoints (-want +got):\n%s", diff)
	}
}

func TestEndpointsFromEndpointSlices(t *testing.T) {
	in := build(t, meshApp+`
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: app
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: admin, port: 9000}]
endpoints:
- addresses: [10.0.0.9]
  conditions: {ready: true}
- addresses: [10.0.5.5]
- addresses: [10.0.0.10]
  conditions: {ready: false}
`)
	web := in.ServiceByHost("web.app.svc.cluster.local")
	got := endpointsOf(in.Endpoints(web, web.Ports[0]))
	want := []string{"web-1 10.0.0.9:8080", "- 10.0.5.5:8080"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slice endpoints (-want +got):\n%s", diff)
	}
	if got := in.Endpoints(web, web.Ports[2]); len(got) != 0 {
		t.Errorf("port missing from the slice has endpoints %v", got)
	}
}

func endpointsOf(eps []Endpoint) []string {
	var out []string
	for _, e := range eps {
		pod := "-"
		if e.Workload != nil {
			pod = e.Workload.PodName
		}
		out = append(out, pod+" "+e.IP+":"+itoa(int(e.Port)))
	}
	return out
}

func TestIndexWorksOnLiteralInput(t *testing.T) {
	w := &Workload{Meta: Meta{Namespace: "ns"}, PodName: "p", PodLabels: map[string]string{"a": "b"}, IP: "10.1.1.1"}
	s := &Service{Meta: Meta{Namespace: "ns", Name: "s"}, Selector: map[string]string{"a": "b"}}
	in := &Input{Workloads: []*Workload{w}, Services: []*Service{s}}
	if in.WorkloadByPod("ns", "p") != w || in.ServiceByHost("s.ns.svc.cluster.local") != s {
		t.Error("lookups on an Input not made by Build failed")
	}
	if got := in.Endpoints(s, ServicePort{Port: 80, TargetPort: 8080}); len(got) != 1 || got[0].Port != 8080 {
		t.Errorf("endpoints = %v", got)
	}
}
