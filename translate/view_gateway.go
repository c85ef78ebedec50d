package translate

import (
	"slices"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/wardenmesh/warden/watch"
)

// GatewayServerView is one Gateway server an ingress gateway serves, as `wardenctl
// describe` shows it: port, hosts, TLS mode, the certificate it presents (metadata
// only, never key material) and what its bound VirtualServices route to.
type GatewayServerView struct {
	Gateway  string   `json:"gateway"` // ns/name
	Field    string   `json:"field"`   // spec.servers[i]
	Port     uint32   `json:"port"`
	PortName string   `json:"portName,omitempty"`
	Protocol string   `json:"protocol"`
	Hosts    []string `json:"hosts"`
	// TLSMode is SIMPLE, MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL or PASSTHROUGH; empty
	// for plain HTTP.
	TLSMode       string `json:"tlsMode,omitempty"`
	HTTPSRedirect bool   `json:"httpsRedirect,omitempty"`
	// Certificate is what an HTTPS server presents: from its credentialName Secret,
	// or the gateway's workload certificate for ISTIO_MUTUAL.
	Certificate *GatewayCertView `json:"certificate,omitempty"`
	// ClientCA is the SDS name of the CA that verifies client certificates (MUTUAL,
	// OPTIONAL_MUTUAL), with the Secret it comes from.
	ClientCA string `json:"clientCA,omitempty"`
	// Refused says why the server refuses connections (or is ignored); empty when it
	// serves. The diagnostics carry the details.
	Refused string             `json:"refused,omitempty"`
	Routes  []GatewayRouteView `json:"routes,omitempty"`
}

// GatewayCertView is the certificate of a server: its source and leaf metadata.
type GatewayCertView struct {
	// Source is "Secret ns/name" or "workload certificate (SPIFFE)".
	Source string          `json:"source"`
	SDS    string          `json:"sds,omitempty"` // the SDS resource name
	Leaf   *watch.CertInfo `json:"leaf,omitempty"`
	// Error says why the Secret cannot be served (missing, no usable key pair).
	Error string `json:"error,omitempty"`
}

// GatewayRouteView is one route of a VirtualService bound to the server.
type GatewayRouteView struct {
	VirtualService string   `json:"virtualService"` // ns/name
	Kind           string   `json:"kind"`           // http, tls (PASSTHROUGH) or tcp (TLS terminated)
	Hosts          []string `json:"hosts"`          // bound hosts (http) or sniHosts (tls)
	Destinations   []string `json:"destinations"`   // host[:port][ subset s] [weight w]
}

// gatewayServerViews lists the servers of every Gateway selecting the gateway w, in
// port order, with the diagnostics of its translation to tell which refuse.
func (x *Index) gatewayServerViews(w *watch.Workload, diags []watch.Diagnostic) []GatewayServerView {
	if !w.Gateway {
		return nil
	}
	b := newBuilder(x)
	byPort := b.gatewayServers(w)
	ports := make([]uint32, 0, len(byPort))
	for p := range byPort {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	var out []GatewayServerView
	for _, port := range ports {
		for _, s := range byPort[port] {
			out = append(out, x.gatewayServerView(w, port, s, diags))
		}
	}
	return out
}

func (x *Index) gatewayServerView(w *watch.Workload, port uint32, s gatewayServer, diags []watch.Diagnostic) GatewayServerView {
	t := s.server.GetTls()
	v := GatewayServerView{
		Gateway: s.gw.Key(), Field: s.field, Port: port, PortName: s.server.GetPort().GetName(),
		Protocol: strings.ToUpper(s.server.GetPort().GetProtocol()), Hosts: slices.Clone(s.server.GetHosts()),
		HTTPSRedirect: t.GetHttpsRedirect(),
	}
	if isTLSServer(s.server) {
		v.TLSMode = t.GetMode().String()
	}
	switch t.GetMode() {
	case networking.ServerTLSSettings_SIMPLE, networking.ServerTLSSettings_MUTUAL, networking.ServerTLSSettings_OPTIONAL_MUTUAL:
		if v.TLSMode == "" {
			break
		}
		cred := t.GetCredentialName()
		c := &GatewayCertView{Source: "Secret " + w.Namespace + "/" + cred, SDS: watch.CredentialPrefix + cred}
		switch sec, _, ok := x.in.SecretFor(w.Namespace, c.SDS, watch.UseGateway); {
		case cred == "":
			c.Source, c.SDS, c.Error = "none", "", "no credentialName"
		case ok:
			c.Leaf = sec.Cert
		case x.in.Secrets[w.Namespace+"/"+cred] != nil && x.in.Secrets[w.Namespace+"/"+cred].Err != "":
			c.Error = x.in.Secrets[w.Namespace+"/"+cred].Err
		default:
			c.Error = "no Secret " + w.Namespace + "/" + cred + " with a certificate and key"
		}
		v.Certificate = c
		if t.GetMode() != networking.ServerTLSSettings_SIMPLE && cred != "" {
			caName := watch.CredentialPrefix + cred + watch.CACertSuffix
			v.ClientCA = caName
			if sec, _, ok := x.in.SecretFor(w.Namespace, caName, watch.UseGateway); ok {
				v.ClientCA += " (Secret " + sec.Key() + ")"
			} else {
				v.ClientCA += " (missing)"
			}
		}
	case networking.ServerTLSSettings_ISTIO_MUTUAL:
		if v.TLSMode != "" {
			v.Certificate = &GatewayCertView{Source: "workload certificate (" + spiffeID(x.in.TrustDomain, w.Namespace, w.ServiceAccount) + ")", SDS: SecretDefault}
		}
	}
	for _, d := range diags {
		if d.Kind == "Gateway" && d.Namespace+"/"+d.Name == s.gw.Key() && d.IsError() &&
			(d.Field == s.field || strings.HasPrefix(d.Field, s.field+".")) {
			v.Refused = d.Field + ": " + d.Message
			break
		}
	}
	v.Routes = x.gatewayRouteViews(s, port)
	return v
}

// gatewayRouteViews are the http routes (HTTP and HTTPS servers), tls routes
// (PASSTHROUGH) or tcp routes (TLS servers terminating TLS) that bound
// VirtualServices give the server.
func (x *Index) gatewayRouteViews(s gatewayServer, port uint32) []GatewayRouteView {
	passthrough := s.server.GetTls().GetMode() == networking.ServerTLSSettings_PASSTHROUGH && isTLSServer(s.server)
	var out []GatewayRouteView
	for _, vs := range x.in.VirtualServices {
		if !vsBindsGateway(vs, s.gw) {
			continue
		}
		hosts := boundHosts(vs, s)
		if len(hosts) == 0 {
			continue
		}
		if isTLSServer(s.server) && !passthrough && strings.ToUpper(s.server.GetPort().GetProtocol()) == "TLS" {
			for _, r := range vs.Spec.GetTcp() {
				if !tcpRouteMatches(r, port, vs, s) {
					continue
				}
				var dests []string
				for _, d := range r.GetRoute() {
					dests = append(dests, destinationText(d.GetDestination(), d.GetWeight(), len(r.GetRoute()) > 1))
				}
				out = append(out, GatewayRouteView{VirtualService: vs.Key(), Kind: "tcp", Hosts: hosts, Destinations: dests})
			}
			continue
		}
		if !passthrough {
			for _, r := range vs.Spec.GetHttp() {
				var dests []string
				for _, d := range r.GetRoute() {
					dests = append(dests, destinationText(d.GetDestination(), d.GetWeight(), false))
				}
				switch {
				case r.GetRedirect() != nil:
					dests = append(dests, "redirect")
				case r.GetDirectResponse() != nil:
					dests = append(dests, "direct response "+strconv.Itoa(int(r.GetDirectResponse().GetStatus())))
				}
				out = append(out, GatewayRouteView{VirtualService: vs.Key(), Kind: "http", Hosts: hosts, Destinations: dests})
			}
			continue
		}
		names := serverNames(s.server)
		for _, r := range vs.Spec.GetTls() {
			var sni []string
			for _, m := range r.GetMatch() {
				if m.GetPort() != 0 && m.GetPort() != port {
					continue
				}
				for _, h := range m.GetSniHosts() {
					if len(names) == 0 || slices.ContainsFunc(names, func(p string) bool { return hostCovers(p, h) }) {
						sni = append(sni, h)
					}
				}
			}
			if len(sni) == 0 {
				continue
			}
			var dests []string
			for _, d := range r.GetRoute() {
				dests = append(dests, destinationText(d.GetDestination(), d.GetWeight(), len(r.GetRoute()) > 1))
			}
			out = append(out, GatewayRouteView{VirtualService: vs.Key(), Kind: "tls", Hosts: sni, Destinations: dests})
		}
	}
	return out
}

// destinationText names a destination with its weight when it has one; zeroWeight
// also shows a weight of 0, for tls and tcp routes with several destinations, where
// such a destination gets no connection.
func destinationText(d *networking.Destination, weight int32, zeroWeight bool) string {
	s := d.GetHost()
	if p := d.GetPort().GetNumber(); p != 0 {
		s += ":" + strconv.FormatUint(uint64(p), 10)
	}
	if d.GetSubset() != "" {
		s += " subset " + d.GetSubset()
	}
	if weight != 0 || zeroWeight {
		s += " weight " + strconv.Itoa(int(weight))
	}
	return s
}
