package translate

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/wardenmesh/warden/translate/authz"
)

// checkGateway evaluates the policies of an ingress gateway for req. The gateway
// serves plaintext HTTP on the port of each Gateway server that selects it, with the
// same policy filters a sidecar's inbound HCM has: the caller has no peer identity,
// and its address is the connection's peer (the gateway uses the remote address).
func (x *Index) checkGateway(proxy Proxy, req authz.CheckRequest) authz.CheckResult {
	w := x.gatewayWorkload(proxy)
	b := newBuilder(x)
	b.w = w
	servers := b.gatewayServers(w)
	port := req.Port
	if port == 0 && len(servers) > 0 {
		ports := make([]uint32, 0, len(servers))
		for p := range servers {
			ports = append(ports, p)
		}
		port = slices.Min(ports)
	}
	res := authz.CheckResult{Proxy: w.PodName + "." + w.Namespace, Port: port, Protocol: "HTTP"}
	if _, ok := servers[port]; !ok {
		res.Decision, res.ConnectionRefused = "DENY", true
		res.Reason = "no Gateway server selecting this gateway listens on port " + strconv.FormatUint(uint64(port), 10) + ": the gateway has no listener there"
		return res
	}
	_, srcIP, _ := x.caller(req, ModeDisable)
	a := &authz.Attributes{DestPort: port, SNI: req.SNI, Headers: map[string]string{}}
	a.DestIP, _ = netip.ParseAddr(w.IP)
	a.DirectIP, _ = netip.ParseAddr(srcIP)
	a.RemoteIP = a.DirectIP
	if req.RemoteIP != "" {
		a.RemoteIP, _ = netip.ParseAddr(req.RemoteIP)
	} else if ip, ok := xffClient(req.Headers, b.gatewayTrustedHops(w)); ok {
		a.RemoteIP = ip
	}
	x.httpAttrs(a, w, port, req)
	res.Path = a.Path
	x.selectAuthz(w).set.Evaluate(&res, true, *a)
	return res
}

// xffClient is the client address Envoy's HCM takes from X-Forwarded-For with
// use_remote_address and xff_num_trusted_hops = hops: the hops-th entry from the right
// of the header the request arrived with. With no trusted hops, a shorter header or an
// entry that is no address, Envoy keeps the connection's peer (ok false).
func xffClient(headers map[string]string, hops uint32) (netip.Addr, bool) {
	if hops == 0 {
		return netip.Addr{}, false
	}
	var xff string
	for k, v := range headers {
		if strings.EqualFold(k, "x-forwarded-for") {
			xff = v
		}
	}
	if xff == "" {
		return netip.Addr{}, false
	}
	parts := strings.Split(xff, ",")
	if uint64(len(parts)) < uint64(hops) {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(parts[len(parts)-int(hops)]))
	return ip, err == nil
}
