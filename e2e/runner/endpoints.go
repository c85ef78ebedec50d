package runner

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/watch"
)

// sliceSpec is one EndpointSlice of a Service.
type sliceSpec struct {
	name      string
	ports     []discoveryv1.EndpointPort
	endpoints []kubeenv.Endpoint
}

// endpointSlices derives, as the endpoint controller would, the EndpointSlices of every
// Service with a selector ("ns/name" -> slices) from the runner's view of the ready
// pods: the endpoints that serve the same port numbers share a slice. A Service
// without endpoints gets one empty slice.
func endpointSlices(in *watch.Input) map[string][]sliceSpec {
	out := map[string][]sliceSpec{}
	for _, svc := range in.Services {
		if svc.Selector == nil {
			continue
		}
		type backend struct {
			pod   string
			ports map[string]uint32 // service port name -> target port
		}
		byIP := map[string]*backend{}
		for _, sp := range svc.Ports {
			for _, ep := range in.Endpoints(svc, sp) {
				b := byIP[ep.IP]
				if b == nil {
					b = &backend{ports: map[string]uint32{}}
					if ep.Workload != nil {
						b.pod = ep.Workload.PodName
					}
					byIP[ep.IP] = b
				}
				b.ports[sp.Name] = ep.Port
			}
		}
		base := svc.Name + "-e2e"
		key := svc.Namespace + "/" + svc.Name
		if len(byIP) == 0 {
			out[key] = []sliceSpec{{name: base}}
			continue
		}
		groups := map[string]*sliceSpec{}
		var order []string
		ips := make([]string, 0, len(byIP))
		for ip := range byIP {
			ips = append(ips, ip)
		}
		slices.Sort(ips)
		for _, ip := range ips {
			b := byIP[ip]
			sig := portSignature(svc, b.ports)
			g := groups[sig]
			if g == nil {
				g = &sliceSpec{ports: slicePorts(svc, b.ports)}
				groups[sig] = g
				order = append(order, sig)
			}
			g.endpoints = append(g.endpoints, kubeenv.Endpoint{IP: ip, Pod: b.pod, Ready: true})
		}
		slices.Sort(order)
		for i, sig := range order {
			g := groups[sig]
			g.name = base
			if i > 0 {
				g.name = fmt.Sprintf("%s-%d", base, i)
			}
			out[key] = append(out[key], *g)
		}
	}
	return out
}

// portSignature names the port numbers one endpoint serves, in the Service's port order.
func portSignature(svc *watch.Service, ports map[string]uint32) string {
	var parts []string
	for _, sp := range svc.Ports {
		if p, ok := ports[sp.Name]; ok {
			parts = append(parts, fmt.Sprintf("%s=%d", sp.Name, p))
		}
	}
	return strings.Join(parts, ",")
}

func slicePorts(svc *watch.Service, ports map[string]uint32) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, sp := range svc.Ports {
		p, ok := ports[sp.Name]
		if !ok {
			continue
		}
		proto := corev1.Protocol(sp.Protocol)
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		ep := discoveryv1.EndpointPort{Name: new(sp.Name), Port: new(int32(p)), Protocol: &proto}
		if sp.AppProtocol != "" {
			ep.AppProtocol = new(sp.AppProtocol)
		}
		out = append(out, ep)
	}
	return out
}
