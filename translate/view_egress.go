package translate

import (
	"fmt"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/wardenmesh/warden/watch"
)

// EgressView says where a workload's calls outside the Kubernetes Services may go: the
// mesh's outbound traffic policy and the ServiceEntry hosts exported to its namespace.
type EgressView struct {
	// Policy is ALLOW_ANY (destinations outside the registry are passed through) or
	// REGISTRY_ONLY (they are refused: BlackHoleCluster, or 502 for HTTP).
	Policy string           `json:"policy"`
	Hosts  []EgressHostView `json:"hosts,omitempty"`
}

// EgressHostView is one ServiceEntry host and port the workload may reach.
type EgressHostView struct {
	Host       string `json:"host"`  // host:port
	Entry      string `json:"entry"` // ServiceEntry ns/name
	Location   string `json:"location"`
	Resolution string `json:"resolution"`
	Protocol   string `json:"protocol,omitempty"`
	TLS        string `json:"tls"` // "plaintext", "auto mTLS" or the DestinationRule's mode
}

// namespace is the namespace of the Service or ServiceEntry behind s.
func (s outboundService) namespace() string {
	if s.se != nil {
		return s.se.cfg.Namespace
	}
	return s.svc.Namespace
}

func (x *Index) egressView(w *watch.Workload, refs map[string]bool) *EgressView {
	v := &EgressView{Policy: "ALLOW_ANY"}
	if newBuilder(x).registryOnly() {
		v.Policy = "REGISTRY_ONLY"
	}
	for _, s := range x.services {
		if s.se == nil || !x.seVisibleTo(s.se.cfg, w.Namespace) {
			continue
		}
		refs[viewRef(&s.se.cfg.Meta)] = true
		tls := "plaintext"
		if s.se.cfg.Spec.GetLocation() == networking.ServiceEntry_MESH_INTERNAL {
			tls = "auto mTLS"
		}
		if r := x.dr.lookup(w.Namespace, w.PodLabels, s.se.cfg.Namespace, s.fqdn); r != nil {
			if t, _ := r.tlsFor(s.port.Port); t != nil {
				tls = t.GetMode().String() + " (" + r.cfg.Key() + ")"
			}
		}
		v.Hosts = append(v.Hosts, EgressHostView{
			Host:       fmt.Sprintf("%s:%d", s.se.host, s.port.Port),
			Entry:      s.se.cfg.Key(),
			Location:   s.se.cfg.Spec.GetLocation().String(),
			Resolution: s.se.cfg.Spec.GetResolution().String(),
			Protocol:   s.se.port.GetProtocol(),
			TLS:        tls,
		})
	}
	return v
}
