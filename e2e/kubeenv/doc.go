// Package kubeenv runs a real Kubernetes control plane for tests: Debian's etcd and a
// kube-apiserver built from the k8s.io/kubernetes module (hack/deps.sh caches it in
// .cache/bin), both on loopback with random ports and a throw-away data directory.
//
// No controller manager, scheduler or kubelet runs. What they would write, the tests
// write themselves: Pod objects with their IP (WritePod), EndpointSlices (WriteEndpointSlice)
// and ServiceAccounts. Manifests of any kind, CRDs and their objects included, are
// applied with server-side apply (Apply). Service-account tokens, bound to a pod or not,
// come from the TokenRequest API (Token), and TokenReview works on them.
package kubeenv
