package watch

import (
	"fmt"
	"net/netip"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// ServiceEntry protocols Istio accepts (protocol.Parse, case-insensitive); "" is TCP.
var serviceEntryProtocols = map[string]bool{
	"": true, "http": true, "http2": true, "https": true, "grpc": true, "grpc-web": true, "tcp": true,
	"tls": true, "mongo": true, "mysql": true, "redis": true, "udp": true,
}

// validateServiceEntry repeats the checks of Istio's webhook (ValidateServiceEntry)
// that decide what Warden builds: every error names its field.
func validateServiceEntry(se *networking.ServiceEntry) []fieldError {
	var errs []fieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, fieldError{field, fmt.Sprintf(format, args...)})
	}
	res := se.GetResolution()
	if len(se.GetHosts()) == 0 {
		add("spec.hosts", "a ServiceEntry needs at least one host")
	}
	for i, h := range se.GetHosts() {
		field := fmt.Sprintf("spec.hosts[%d]", i)
		switch {
		case h == "*":
			add(field, "host * would capture every destination; name the hosts")
		case !validHost(h):
			add(field, "invalid host %q (want a DNS name, optionally starting with *.)", h)
		case res == networking.ServiceEntry_DNS && len(se.GetEndpoints()) == 0 && strings.HasPrefix(h, "*"):
			add(field, "resolution DNS without endpoints resolves the hosts themselves: %q is a wildcard", h)
		}
	}
	for i, a := range se.GetAddresses() {
		if _, err := netip.ParsePrefix(a); err != nil {
			if _, err := netip.ParseAddr(a); err != nil {
				add(fmt.Sprintf("spec.addresses[%d]", i), "invalid address %q (want an IP or a CIDR)", a)
			}
		}
	}
	names := map[string]bool{}
	numbers := map[uint32]bool{}
	for i, p := range se.GetPorts() {
		field := fmt.Sprintf("spec.ports[%d]", i)
		if p == nil {
			add(field, "a port must not be null")
			continue
		}
		switch n := p.GetNumber(); {
		case n == 0 || n > 65535:
			add(field+".number", "port must be in 1..65535")
		case numbers[n]:
			add(field+".number", "port %d is listed twice", n)
		}
		numbers[p.GetNumber()] = true
		if p.GetTargetPort() > 65535 {
			add(field+".targetPort", "targetPort must be in 1..65535")
		}
		switch {
		case p.GetName() == "":
			add(field+".name", "a port needs a name")
		case names[p.GetName()]:
			add(field+".name", "port name %q is used twice", p.GetName())
		}
		names[p.GetName()] = true
		if !serviceEntryProtocols[strings.ToLower(p.GetProtocol())] {
			add(field+".protocol", "unknown protocol %q", p.GetProtocol())
		}
	}
	if se.GetWorkloadSelector() != nil && len(se.GetEndpoints()) > 0 {
		add("spec", "only one of workloadSelector or endpoints can be set")
	}
	for _, k := range sortedKeys(se.GetWorkloadSelector().GetLabels()) {
		if k == "" || strings.Contains(k, "*") || strings.Contains(se.GetWorkloadSelector().GetLabels()[k], "*") {
			add("spec.workloadSelector.labels["+k+"]", "label keys must not be empty and neither keys nor values may hold wildcards")
		}
	}
	switch res {
	case networking.ServiceEntry_STATIC:
		if len(se.GetEndpoints()) == 0 && se.GetWorkloadSelector() == nil {
			add("spec.endpoints", "resolution STATIC needs endpoints or a workloadSelector")
		}
	case networking.ServiceEntry_DNS_ROUND_ROBIN:
		if len(se.GetEndpoints()) > 1 {
			add("spec.endpoints", "resolution DNS_ROUND_ROBIN takes at most one endpoint")
		}
	case networking.ServiceEntry_DYNAMIC_DNS:
		add("spec.resolution", "DYNAMIC_DNS is for ambient waypoints, which Warden does not serve")
	}
	for i, ep := range se.GetEndpoints() {
		field := fmt.Sprintf("spec.endpoints[%d]", i)
		if ep == nil {
			add(field, "an endpoint must not be null")
			continue
		}
		_, ipErr := netip.ParseAddr(ep.GetAddress())
		switch {
		case ep.GetAddress() == "":
			add(field+".address", "an endpoint needs an address")
		case strings.HasPrefix(ep.GetAddress(), "unix://"):
			add(field+".address", "unix domain socket endpoints are not supported")
		case res == networking.ServiceEntry_STATIC && ipErr != nil:
			add(field+".address", "resolution STATIC needs IP addresses, got %q", ep.GetAddress())
		case ipErr != nil && !validHost(ep.GetAddress()):
			add(field+".address", "invalid address %q (want an IP or a DNS name)", ep.GetAddress())
		}
		for _, name := range sortedKeys(ep.GetPorts()) {
			if !names[name] {
				add(field+".ports["+name+"]", "no port of the ServiceEntry is named %q", name)
			}
			if n := ep.GetPorts()[name]; n == 0 || n > 65535 {
				add(field+".ports["+name+"]", "port must be in 1..65535")
			}
		}
	}
	return errs
}

// validHost accepts a DNS name, optionally with a leading "*." (or "*" prefix, as
// Istio allows "*foo.com"), made of letters, digits, '-' and '.'.
func validHost(h string) bool {
	h = strings.TrimPrefix(h, "*")
	h = strings.TrimPrefix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
