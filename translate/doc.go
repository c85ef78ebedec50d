// Package translate is a pure function from the mesh (watch.Input) and one proxy's
// identity to that proxy's Envoy resources: it assembles one proxy's listeners,
// routes, clusters, endpoints and SDS secret names, with per-object diagnostics. It
// has no clock, no logging, no network: the same Input and Proxy always give
// byte-identical output.
//
// Translation resolves first, then builds:
//   - attach.go decides, for every policy kind (PeerAuthentication,
//     RequestAuthentication, AuthorizationPolicy, Gateway, DestinationRule
//     workloadSelector), whether a policy attaches to a workload and with what scope,
//     as Istio's pilot/pkg/model/policyattachment.go does;
//   - peerauthn.go resolves the PeerAuthentication mode per workload and port,
//     destinationrule.go the DestinationRule per Service, jwt.go the
//     RequestAuthentications into one jwt_authn filter;
//   - the AuthorizationPolicy model lives in translate/authz, which compiles the
//     attached policies and builds their RBAC and ext_authz filters; translate places
//     them (filters_authz.go) and resolves a `wardenctl check` request (check.go)
//     before authz evaluates it;
//   - listener_*.go, cluster*.go, route.go, endpoint.go, gateway*.go and outbound.go
//     build the resources; index.go shares what every proxy of one Input can reuse;
//     probes.go the application-probe listener 0.0.0.0_15020 from the Pod's
//     warden.io/app-probers (httpGet forwarded to loopback; tcpSocket and grpc answered
//     from Envoy's last active health check, not on demand as Istio's pilot-agent does).
//
// output.go holds the types of the result (Proxy, Output, Parts); view_mtls.go and
// view_describe.go the read-only views behind `wardenctl status` and `describe`.
package translate
