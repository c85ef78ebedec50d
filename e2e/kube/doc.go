// Package kube tests Kubernetes mode end to end against a real kube-apiserver and etcd
// (e2e/kubeenv): the manifests in deploy/ apply, wardend runs with its ClusterRole's
// own token, every watched kind reaches a stock Envoy authenticated by TokenReview, an
// API server restart loses and pushes nothing, and bad objects get Events.
package kube
