// Package inject turns a Pod into the Pod Warden's sidecar injector admits: the capture
// init container, the bootstrap init container and stock Envoy as a native sidecar
// (an init container with restartPolicy Always), plus the rewritten application probes.
// It is a pure function of the Pod, its namespace's labels and a Config; wardend's
// admission webhook (cmd/wardend) calls it and turns the result into a JSON patch.
//
// Selection follows Istio's injectRequired (pkg/kube/inject/inject.go): a pod in a
// namespace labelled istio-injection=enabled is injected unless the pod label or
// annotation sidecar.istio.io/inject says "false" (either one saying "false" wins, where
// Istio lets the label override the annotation), never in kube-system, kube-public or
// wardend's own namespace, never with hostNetwork, and never twice (a pod carrying
// sidecar.istio.io/status is left as it is).
//
// Bad annotations never produce a half-injected pod: a malformed value is reported as an
// admission warning naming the annotation and the default used instead; a pod that
// cannot be injected at all (a name it already uses) is refused with an error.
package inject
