// Package kube is Warden's Kubernetes mode source: client-go shared informers on the
// Istio security and networking kinds and the core kinds Warden reads, turned into the
// same immutable watch.Input that directory mode builds.
//
// Every object from the API server is encoded to JSON and decoded by watch.DecodeFile,
// the function that reads YAML files in directory mode, so validation, defaults and
// diagnostics are identical in both modes. Snapshots are built with watch.Build on top
// of watch.RetainLastGood, so a rejected update keeps the last good version serving.
//
// Nothing is emitted before every informer has synced: an empty cache never means "no
// policies". When the API server goes away the informers keep their caches and nothing
// new is emitted; when it returns they relist, and an unchanged view produces no new
// Input. Each diagnostic, the Input's and those the server reports from translation
// (Source.ReportDiagnostics), becomes one Warning Event (reason InvalidConfig for errors,
// ConfigWarning for warnings) on the object it names, once per object version and message.
package kube
