// Package cluster emulates the pods of a small mesh on one Linux machine, for Warden's
// end-to-end tests and scenario runner.
//
// A Cluster owns a run slot n (0..63), taken with a lock file under /run/warden-e2e, and
// everything it creates is named after that slot so concurrent runs never collide:
//
//   - bridge wbr<n> with the host address 10.248.<n>.1/24 (where wardend listens),
//   - one network namespace w<n>-<hash> per pod, joined to the bridge by a veth pair; the
//     pod's address is a /32 whose only routes go through the host, so every packet
//     between pods is routed (and NATed) by the host rather than switched by the bridge,
//   - Service virtual IPs from 10.249.<n>.0/24, translated to one endpoint by host nat
//     rules, as kube-proxy would, and
//   - iptables chains WE2E<n>_SVC, WE2E<n>_POST (nat) and WE2E<n>_FWD (filter), where
//     the forward chain drops anything that would leave the bridge: pods can reach each
//     other and the host, never another machine.
//
// The owner's PID and work directory are recorded in /run/warden-e2e/w<n>/state.json.
// Close removes everything; so does SIGINT or SIGTERM, unless Options.NoSignalHandler
// is set; and New removes the leftovers of runs whose owner died without cleaning up.
//
// The package needs root, ip (iproute2), iptables (legacy backend, see `make deps`) and
// setpriv (util-linux).
package cluster
