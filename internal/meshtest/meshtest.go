// Package meshtest is the shared test fixture of Warden's packages: named base meshes
// as manifests, small builders for the policies tests add to them, and the one way a
// test turns manifests into a watch.Input (the strict decoder, then Build, exactly as
// wardend does). Tests compose a mesh from these instead of retyping YAML:
//
//	in := meshtest.Input(t, meshtest.Httpbin, meshtest.AuthorizationPolicy("deny", "foo", `{action: DENY, rules: [{}]}`))
package meshtest

import (
	"strings"
	"testing"

	"github.com/wardenmesh/warden/watch"
)

// RootNamespace declares istio-system, the root namespace, as a cluster with Warden
// installed has it.
const RootNamespace = `apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
`

// Httpbin is namespace foo (injected) with httpbin (service account httpbin, HTTP 8000
// and TCP 9000, Service httpbin with cluster IP 10.96.0.10) and an injected sleep, plus
// namespace legacy with a sleep that has no sidecar: the mesh of Istio's authorization
// tasks.
const Httpbin = `apiVersion: v1
kind: Namespace
metadata: {name: foo, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: v1
kind: Pod
metadata: {name: httpbin, namespace: foo, labels: {app: httpbin}, annotations: {warden.io/pod-ip: "10.0.0.10"}}
spec:
  serviceAccountName: httpbin
  containers:
  - name: app
    image: x
    ports: [{name: http, containerPort: 8000}, {name: tcp, containerPort: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  clusterIP: 10.96.0.10
  selector: {app: httpbin}
  ports: [{name: http, port: 8000}, {name: tcp-echo, port: 9000}]
---
apiVersion: v1
kind: Pod
metadata: {name: sleep, namespace: foo, labels: {app: sleep}, annotations: {warden.io/pod-ip: "10.0.0.20"}}
spec: {serviceAccountName: sleep, containers: [{name: app, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: sleep, namespace: legacy, labels: {app: sleep}, annotations: {warden.io/pod-ip: "10.0.1.20"}}
spec: {serviceAccountName: sleep, containers: [{name: app, image: x}]}
`

// Web is namespaces foo and bar with one pod, foo/web (label app: web, service account
// default, no ports): the smallest mesh a sidecar translation needs.
const Web = `apiVersion: v1
kind: Namespace
metadata: {name: foo}
---
apiVersion: v1
kind: Namespace
metadata: {name: bar}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: foo, labels: {app: web}}
spec:
  containers: [{name: web, image: x}]
`

// Shop is namespace shop (injected) with pod db-0 (app: db, port 5432) under a STRICT
// namespace PeerAuthentication, and namespace other with a pod cli that has no sidecar:
// the mesh of the xds and wardenctl view tests.
const Shop = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: shop, labels: {app: db}}
spec:
  containers: [{name: db, image: db, ports: [{containerPort: 5432}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: cli, namespace: other}
spec:
  containers: [{name: cli, image: cli}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: STRICT}}
`

// AuthorizationPolicy is one AuthorizationPolicy with spec written in YAML flow style.
func AuthorizationPolicy(name, namespace, spec string) string {
	return object("security.istio.io/v1", "AuthorizationPolicy", name, namespace, spec)
}

// PeerAuthentication is one PeerAuthentication with spec in YAML flow style.
func PeerAuthentication(name, namespace, spec string) string {
	return object("security.istio.io/v1", "PeerAuthentication", name, namespace, spec)
}

// MeshConfig is the istio-system/istio ConfigMap holding mesh (MeshConfig YAML).
func MeshConfig(mesh string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n" +
		indent(mesh, "    ")
}

func object(apiVersion, kind, name, namespace, spec string) string {
	return "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata: {name: " + name + ", namespace: " + namespace +
		"}\nspec: " + spec + "\n"
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
	return b.String()
}

// Join puts manifests into one multi-document file.
func Join(docs ...string) string {
	var b strings.Builder
	for _, d := range docs {
		if strings.TrimSpace(d) == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("---\n")
		}
		b.WriteString(strings.TrimPrefix(d, "\n"))
		if !strings.HasSuffix(d, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Input decodes docs as one file and builds the Input; a rejected object fails the test.
func Input(t testing.TB, docs ...string) *watch.Input {
	t.Helper()
	in := InputAllowingErrors(t, docs...)
	for _, d := range in.Diagnostics {
		if d.IsError() {
			t.Fatalf("input rejected: %v", d)
		}
	}
	return in
}

// Clean is Input that also fails on warnings: for tests whose mesh must be spotless.
func Clean(t testing.TB, docs ...string) *watch.Input {
	t.Helper()
	in := InputAllowingErrors(t, docs...)
	if len(in.Diagnostics) > 0 {
		t.Fatalf("unexpected diagnostics: %v", in.Diagnostics)
	}
	return in
}

// InputAllowingErrors decodes and builds docs, keeping rejected objects' diagnostics
// in the Input (and the objects in Input.Rejected), for tests of failing closed.
func InputAllowingErrors(t testing.TB, docs ...string) *watch.Input {
	t.Helper()
	objs, diags := watch.DecodeFile("test.yaml", []byte(Join(docs...)))
	return watch.Build(objs, diags)
}
