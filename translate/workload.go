package translate

import (
	"slices"
	"strconv"

	"github.com/wardenmesh/warden/watch"
)

// proxyWorkload is the workload a sidecar fronts: the Pod or Deployment object when
// the Input has one (its labels and IP decide, whatever the proxy's credential says),
// else one synthesized from the proxy's proven identity, with the labels and IP its
// credential's signer vouched for.
func (x *Index) proxyWorkload(p Proxy) *watch.Workload {
	if w := x.in.WorkloadByPod(p.Namespace, p.Pod); w != nil {
		return w
	}
	sa := p.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	return &watch.Workload{
		Meta:           watch.Meta{Kind: "Pod", Namespace: p.Namespace, Name: p.Pod},
		PodName:        p.Pod,
		ServiceAccount: sa,
		PodLabels:      p.Labels,
		IP:             p.IP,
		Sidecar:        true,
	}
}

// inboundPort is one target port the inbound listener has chains for.
type inboundPort struct {
	port  uint32
	proto protocol
	// passthrough: the port is known only from portLevelMtls, so traffic goes to the
	// original destination (InboundPassthroughCluster) rather than inbound|<port>||.
	passthrough bool
}

// targetPort resolves a Service port to the workload's container port; 0 when a
// named target port is not declared by the workload.
func targetPort(sp watch.ServicePort, w *watch.Workload) uint32 {
	if sp.TargetPort != 0 {
		return sp.TargetPort
	}
	if sp.TargetPortName == "" {
		return sp.Port
	}
	for _, cp := range w.Ports {
		if cp.Name == sp.TargetPortName {
			return cp.Port
		}
	}
	return 0
}

// inboundPorts lists, in ascending order, the target ports of every Service selecting
// w, then w's container ports, then its portLevelMtls ports. The first declaration of
// a port decides its protocol (Services in Input order, then container ports).
func (b *builder) inboundPorts(w *watch.Workload, mtls MTLS) []inboundPort {
	seen := map[uint32]bool{}
	var out []inboundPort
	add := func(p inboundPort) {
		if p.port == 0 || seen[p.port] || p.port == inboundListenerPort {
			return
		}
		seen[p.port] = true
		out = append(out, p)
	}
	for _, svc := range b.in.ServicesSelecting(w.Namespace, w.PodLabels) {
		for _, sp := range svc.Ports {
			if !isStream(sp.Protocol) {
				continue
			}
			tp := targetPort(sp, w)
			if tp == 0 {
				b.diag(severityWarning, &svc.Meta, "spec.ports["+sp.Name+"].targetPort",
					"target port "+sp.TargetPortName+" is not a container port of "+w.Namespace+"/"+w.PodName+": not served")
				continue
			}
			proto := portProtocol(sp.Port, sp.Name, sp.AppProtocol)
			if proto == protoAuto && serverFirstHint(sp.Port, sp.Name) {
				b.diag(severityWarning, &svc.Meta, "spec.ports["+portRef(sp)+"].name",
					"port "+strconv.FormatUint(uint64(sp.Port), 10)+" declares no protocol and looks server-first: protocol detection "+b.detectionWait()+"; name it tcp-* (or set appProtocol: tcp)")
			}
			add(inboundPort{port: tp, proto: proto})
		}
	}
	for _, cp := range w.Ports {
		if isStream(cp.Protocol) {
			add(inboundPort{port: cp.Port, proto: portProtocol(cp.Port, cp.Name, "")})
		}
	}
	for _, p := range mtls.PortList() {
		add(inboundPort{port: p, passthrough: true})
	}
	slices.SortFunc(out, func(a, b inboundPort) int { return int(a.port) - int(b.port) })
	return out
}

// portRef names a Service port in a diagnostic field: its name, else its number.
func portRef(sp watch.ServicePort) string {
	if sp.Name != "" {
		return sp.Name
	}
	return strconv.FormatUint(uint64(sp.Port), 10)
}
