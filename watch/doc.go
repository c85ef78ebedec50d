// Package watch turns Kubernetes-style manifests (from a folder of YAML files or,
// later, from the API server) into one immutable, indexed snapshot of the mesh: Input.
//
// Both modes decode through the same functions (DecodeFile for bytes, Build for the
// snapshot), so a YAML file and `kubectl apply` of that file mean the same thing to the
// rest of Warden.
//
// # Decoding
//
// Istio specs (PeerAuthentication, RequestAuthentication, AuthorizationPolicy,
// DestinationRule, Gateway, VirtualService, in every served API version) decode strictly
// into the istio.io/api protos: an unknown field or an invalid enum name rejects the
// object. Kubernetes kinds (Namespace, ServiceAccount, Service, Deployment, Pod,
// ConfigMap, EndpointSlice) decode strictly into the k8s.io/api types. The ConfigMap
// "istio" in istio-system carries the MeshConfig under data key "mesh", also decoded
// strictly. Some of the checks Istio's validating webhook makes are repeated here, so
// that an object the API server would refuse is refused in directory mode too. Other
// kinds produce a warning and are skipped. Every problem is a Diagnostic naming the
// file, document, object and field.
//
// # Ordering
//
// Workloads and Services are sorted by namespace, then name. Istio objects are sorted by
// (creationTimestamp, name, namespace), Istio's "oldest wins" order. Files in directory
// mode carry no timestamps, so there name then namespace decides, which keeps Build
// deterministic. When two documents define the same object, the established one wins
// (see RetainLastGood); on the first load, the first one read (files in lexical order).
//
// # Bad input in directory mode
//
// DirWatcher reloads the whole folder after each burst of changes (DebounceLoop, shared
// with the Kubernetes source) and emits one new Input. RetainLastGood decides what
// serves: a rejected object never silently disappears. If the previous Input held a
// good version of it, that version keeps serving (it is listed in Input.Stale). While a
// file has any error (a document that does not parse, a cut-off kind such as "Peer", an
// object over MaxObjectBytes) or is empty, every object it served keeps serving, until
// the file parses again or is deleted. An established object keeps its file: a new
// file defining it again is rejected, naming both. So a typo or a half-written file
// never downgrades the mesh. An object that never had a good version is absent and
// listed in Input.Rejected, so translation can fail closed for its scope. Every
// Diagnostic is kept in Input.Diagnostics; wardend's server logs each once. The classes
// of bad input are catalogued in docs/bad-input.md.
package watch
