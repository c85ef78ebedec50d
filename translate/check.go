package translate

import (
	"cmp"
	"net/netip"
	"strings"

	"github.com/wardenmesh/warden/translate/authz"
	"github.com/wardenmesh/warden/watch"
)

// The request side of `wardenctl check`: translate resolves the proxy (its port and
// chain, PeerAuthentication mode, the caller's identity as Envoy would see it, the
// AuthorizationPolicies that attach) and authz.Set.Evaluate decides.

// Check evaluates the AuthorizationPolicies that apply to proxy for req, with the
// same compiled policies the RBAC filters are built from.
func Check(in *watch.Input, proxy Proxy, req authz.CheckRequest) authz.CheckResult {
	return NewIndex(in).Check(proxy, req)
}

// Check is the package-level Check using the Index's precomputed state.
func (x *Index) Check(proxy Proxy, req authz.CheckRequest) authz.CheckResult {
	w := x.proxyWorkload(proxy)
	if proxy.Gateway || w.Gateway {
		return x.checkGateway(proxy, req)
	}
	mtls := x.workloadMTLS(w)
	res := authz.CheckResult{Proxy: w.PodName + "." + w.Namespace, Protocol: "TCP"}
	port, http := x.checkPort(w, mtls, req.Port)
	res.Port = port
	if http {
		res.Protocol = "HTTP"
	}
	mode := mtls.PortMode(port)
	res.MTLSMode = mode.String()

	a := &authz.Attributes{DestPort: port, SNI: req.SNI, Headers: map[string]string{}}
	a.DestIP, _ = netip.ParseAddr(w.IP)
	principal, srcIP, plaintext := x.caller(req, mode)
	if plaintext && mode == ModeStrict {
		res.Decision, res.ConnectionRefused = "DENY", true
		res.Reason = "the port requires mTLS (PeerAuthentication STRICT) and the caller has no sidecar: the connection is closed before authorization"
		return res
	}
	a.Principal, res.Principal = principal, principal
	if a.SNI == "" && principal != "" && req.FromPod != "" && req.Principal == "" {
		a.SNI = meshSNIFor(x.in, w, port) // what the caller's sidecar sends
	}
	a.DirectIP, _ = netip.ParseAddr(srcIP)
	a.RemoteIP = a.DirectIP
	if req.RemoteIP != "" {
		a.RemoteIP, _ = netip.ParseAddr(req.RemoteIP)
	}
	if http {
		x.httpAttrs(a, w, port, req)
		res.Path = a.Path
	}
	x.selectAuthz(w).set.Evaluate(&res, http, *a)
	return res
}

// checkPort resolves the target port and whether its chain is HTTP. An undeclared
// (auto) port is checked as HTTP: the chain a client-first HTTP request reaches.
func (x *Index) checkPort(w *watch.Workload, mtls MTLS, want uint32) (uint32, bool) {
	ports := newBuilder(x).inboundPorts(w, mtls)
	for _, p := range ports {
		if (want == 0 && p.proto != protoTCP && !p.passthrough) || (want != 0 && p.port == want) {
			return p.port, p.proto != protoTCP && !p.passthrough
		}
	}
	return want, false
}

// caller is the identity and address Envoy sees for the request's caller.
func (x *Index) caller(req authz.CheckRequest, mode Mode) (principal, ip string, plaintext bool) {
	ip = req.SourceIP
	if req.FromPod != "" {
		pod, ns, _ := strings.Cut(req.FromPod, ".")
		if src := x.in.WorkloadByPod(ns, pod); src != nil {
			if ip == "" {
				ip = src.IP
			}
			if req.Principal == "" && src.Sidecar && mode != ModeDisable {
				principal = spiffeID(x.in.TrustDomain, src.Namespace, src.ServiceAccount)
			}
		}
	}
	if req.Principal != "" && mode != ModeDisable {
		principal = req.Principal
		if !strings.HasPrefix(principal, "spiffe://") {
			principal = "spiffe://" + principal
		}
	}
	return principal, ip, principal == ""
}

func (x *Index) httpAttrs(a *authz.Attributes, w *watch.Workload, port uint32, req authz.CheckRequest) {
	for k, v := range req.Headers {
		a.Headers[strings.ToLower(k)] = v
	}
	method := cmp.Or(req.Method, "GET")
	path := cmp.Or(req.Path, "/")
	host := req.Host
	if host == "" {
		host = defaultHost(x.in, w, port)
	}
	a.Headers[":method"], a.Headers[":path"], a.Headers[":authority"] = method, path, host
	a.Path = authz.NormalizePath(path, x.in.Mesh.GetPathNormalization().GetNormalization())
	a.Claims = req.Claims
}

// defaultHost is "<service>.<namespace>" of the first Service whose target port is port.
func defaultHost(in *watch.Input, w *watch.Workload, port uint32) string {
	for _, svc := range in.ServicesSelecting(w.Namespace, w.PodLabels) {
		for _, sp := range svc.Ports {
			if targetPort(sp, w) == port {
				return svc.Name + "." + svc.Namespace
			}
		}
	}
	return w.PodName + "." + w.Namespace
}

// meshSNIFor is the SNI a sidecar sends for mesh mTLS to target port of w, through
// the first Service whose target port it is; "" when none.
func meshSNIFor(in *watch.Input, w *watch.Workload, port uint32) string {
	for _, svc := range in.ServicesSelecting(w.Namespace, w.PodLabels) {
		for _, sp := range svc.Ports {
			if targetPort(sp, w) == port {
				return meshSNI(sp.Port, in.Hostname(svc))
			}
		}
	}
	return ""
}
