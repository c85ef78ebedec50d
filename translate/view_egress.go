package translate

import (
	"fmt"
	"strings"

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
	// With a DestinationRule's SIMPLE or MUTUAL origination: the SNI sent, where the
	// certificates come from ("files", or "Secret <ns>/<name>" of credentialName, always
	// of the workload's own namespace), and why the host is blocked when it is.
	SNI          string `json:"sni,omitempty"`
	Certificates string `json:"certificates,omitempty"`
	Blocked      string `json:"blocked,omitempty"`
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
		h := EgressHostView{
			Host:       fmt.Sprintf("%s:%d", s.se.host, s.port.Port),
			Entry:      s.se.cfg.Key(),
			Location:   s.se.cfg.Spec.GetLocation().String(),
			Resolution: s.se.cfg.Spec.GetResolution().String(),
			Protocol:   s.se.port.GetProtocol(),
		}
		if r := x.dr.lookup(w.Namespace, w.PodLabels, s.se.cfg.Namespace, s.fqdn); r != nil {
			if t, _ := r.tlsFor(s.port.Port); t != nil {
				tls = t.GetMode().String() + " (" + r.cfg.Key() + ")"
				x.describeOrigination(&h, s, r, t, w.Namespace)
			}
		}
		h.TLS = tls
		v.Hosts = append(v.Hosts, h)
	}
	return v
}

// describeOrigination fills in a SIMPLE or MUTUAL origination's SNI, certificate
// source and, when the cluster is blocked, why: the cluster's own checks, run for
// the workload's namespace, so describe says what the proxy gets.
func (x *Index) describeOrigination(h *EgressHostView, s outboundService, r *drRule, t *networking.ClientTLSSettings, ns string) {
	if t.GetMode() != networking.ClientTLSSettings_SIMPLE && t.GetMode() != networking.ClientTLSSettings_MUTUAL {
		return
	}
	h.SNI = t.GetSni()
	if h.SNI == "" {
		h.SNI = s.se.host
	}
	switch {
	case t.GetCredentialName() != "":
		h.Certificates = "Secret " + ns + "/" + t.GetCredentialName()
	case t.GetClientCertificate() != "" || t.GetCaCertificates() != "":
		h.Certificates = "files"
	case !t.GetInsecureSkipVerify().GetValue():
		h.Certificates = "the system CA bundle"
	}
	b := newBuilder(x)
	b.credNS = ns
	if sec := b.serviceEntrySecurity(s, r); sec.blocked {
		var why []string
		for _, d := range b.diags {
			if d.IsError() {
				why = append(why, d.Message)
			}
		}
		h.Blocked = strings.Join(why, "; ")
		if h.Blocked == "" {
			h.Blocked = "blocked"
		}
	}
}
