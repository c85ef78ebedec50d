package translate

import (
	"cmp"
	"slices"

	"github.com/wardenmesh/warden/watch"
)

// What runs next to a workload, from the injection decision.
const (
	ProxySidecar = "sidecar"
	ProxyGateway = "gateway"
	ProxyNone    = "none"
)

// MeshDefault names the decision when no PeerAuthentication sets a mode.
const MeshDefault = "(mesh default)"

// WorkloadMTLS is one workload's inbound mTLS as translation serves it: the row of
// `wardenctl mtls`.
type WorkloadMTLS struct {
	Name      string `json:"name"` // pod name
	Namespace string `json:"namespace"`
	// Proxy is ProxySidecar, ProxyGateway or ProxyNone (the injection decision).
	Proxy string `json:"proxy"`
	// Connected is set by wardend when the workload's proxy is connected now.
	Connected bool `json:"connected"`
	// Mode and Policy are the workload-wide decision: what any port not in Ports gets.
	// Empty for gateways, whose listeners come from Gateway servers.
	Mode   string `json:"mode,omitempty"`
	Policy string `json:"policy,omitempty"`
	// Ports are the target ports the inbound listener has chains for, ascending.
	Ports []PortMTLS `json:"ports,omitempty"`
	// Note explains a row without a mode, or a mode nothing enforces.
	Note string `json:"note,omitempty"`
}

// PortMTLS is the decision for one target port.
type PortMTLS struct {
	Port   uint32 `json:"port"`
	Mode   string `json:"mode"`
	Policy string `json:"policy"`           // "ns/name" or MeshDefault
	Reason string `json:"reason,omitempty"` // filled by Describe
}

// Notes of rows whose mode nothing enforces.
const (
	noteGateway   = "gateway: its listeners come from Gateway servers; PeerAuthentication does not apply"
	noteNoSidecar = "no sidecar: nothing enforces the mode; the workload accepts whatever its application does"
)

// MTLSView is the mTLS row of every workload of the Index's Input, sorted by
// namespace and pod name. It uses the same resolution and inbound port list as
// Translate.
func MTLSView(x *Index) []WorkloadMTLS {
	out := make([]WorkloadMTLS, 0, len(x.in.Workloads))
	for _, w := range x.in.Workloads {
		out = append(out, x.workloadRow(w))
	}
	SortMTLSView(out)
	return out
}

// ProxyMTLS is the row of a connected proxy, resolved with the labels it connected
// with, exactly as Translate resolves it.
func ProxyMTLS(x *Index, p Proxy) WorkloadMTLS {
	return x.workloadRow(x.viewWorkload(p))
}

// SortMTLSView orders rows by namespace, then pod name.
func SortMTLSView(rows []WorkloadMTLS) {
	slices.SortFunc(rows, func(a, b WorkloadMTLS) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}

// viewWorkload is the workload Translate serves to the connected proxy p: whatever
// the injection decision said, a connected non-gateway proxy is a sidecar.
func (x *Index) viewWorkload(p Proxy) *watch.Workload {
	if x.ServesGateway(p) {
		return x.gatewayWorkload(p)
	}
	w := *x.proxyWorkload(p)
	w.Sidecar = true
	return &w
}

func (x *Index) workloadRow(w *watch.Workload) WorkloadMTLS {
	row := WorkloadMTLS{Name: w.PodName, Namespace: w.Namespace, Proxy: proxyKind(w)}
	if w.Gateway {
		row.Note = noteGateway
		return row
	}
	m := x.workloadMTLS(w)
	row.Mode, row.Policy = m.Mode.String(), policyName(m.Policy)
	for _, p := range newBuilder(x).inboundPorts(w, m) {
		mode, policy := m.PortDecision(p.port)
		row.Ports = append(row.Ports, PortMTLS{Port: p.port, Mode: mode.String(), Policy: policyName(policy)})
	}
	if !w.Sidecar {
		row.Note = noteNoSidecar
	}
	return row
}

func proxyKind(w *watch.Workload) string {
	switch {
	case w.Gateway:
		return ProxyGateway
	case w.Sidecar:
		return ProxySidecar
	}
	return ProxyNone
}

func policyName(key string) string {
	if key == "" {
		return MeshDefault
	}
	return key
}
