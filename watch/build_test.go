package watch

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMeshConfigFromConfigMap(t *testing.T) {
	in := build(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    rootNamespace: mesh-root
    defaultConfig:
      discoveryAddress: warden:15012
`)
	if in.RootNamespace != "mesh-root" || in.Mesh.GetRootNamespace() != "mesh-root" {
		t.Errorf("root namespace = %q", in.RootNamespace)
	}
	if in.TrustDomain != "cluster.local" || !in.Mesh.GetEnableAutoMtls().GetValue() {
		t.Errorf("defaults not applied: trustDomain %q, enableAutoMtls %v", in.TrustDomain, in.Mesh.GetEnableAutoMtls())
	}
	if in.Mesh.GetDefaultConfig().GetDiscoveryAddress() != "warden:15012" {
		t.Errorf("mesh config not decoded: %v", in.Mesh)
	}
	if in.Namespace("mesh-root") == nil {
		t.Error("root namespace does not exist")
	}
}

func TestMeshConfigDefaultsAndStrictness(t *testing.T) {
	in := build(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: "enableAutoMtls: false\ntrustDomain: example.org"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: istio-system}
data: {mesh: "not: [mesh"}
`)
	if in.Mesh.GetEnableAutoMtls().GetValue() || in.TrustDomain != "example.org" || in.RootNamespace != "istio-system" {
		t.Errorf("mesh = %v", in.Mesh)
	}

	objs, diags := decode(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data: {mesh: "trustDomian: example.org"}
`)
	if len(objs) != 0 || len(diags) != 1 || diags[0].Field != "data.mesh.trustDomian" || diags[0].Message != "unknown field" {
		t.Errorf("objects %v diagnostics %v, want an unknown field error at data.mesh.trustDomian", objs, diags)
	}

	empty := Build(nil, nil)
	if empty.Mesh == nil || empty.RootNamespace != "istio-system" || empty.Namespace("istio-system") == nil {
		t.Errorf("empty input: mesh %v root %q", empty.Mesh, empty.RootNamespace)
	}
}

func TestConfigOrderOldestFirstThenNameThenNamespace(t *testing.T) {
	in := build(t, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: b, namespace: ns1}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: a, namespace: ns2}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: a, namespace: ns1}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: zz, namespace: ns1, creationTimestamp: "2020-01-01T00:00:00Z"}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: yy, namespace: ns1, creationTimestamp: "2021-01-01T00:00:00Z"}
`)
	var got []string
	for _, c := range in.AuthorizationPolicies {
		got = append(got, c.Key())
	}
	// Zero timestamps are the oldest; equal timestamps order by name, then namespace.
	want := []string{"ns1/a", "ns2/a", "ns1/b", "ns1/zz", "ns1/yy"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	objs, diags := DecodeFile("a.yaml", []byte(`
apiVersion: v1
kind: Service
metadata: {name: b, namespace: xx}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: yy}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`))
	first := Build(objs, diags)
	reversed := slices.Clone(objs)
	slices.Reverse(reversed)
	second := Build(reversed, diags)
	if first.Version != second.Version || len(first.Version) != 16 {
		t.Errorf("versions %q and %q, want equal 16-hex-digit hashes", first.Version, second.Version)
	}
	if len(diags) != 0 || first.Services[0].Key() != "xx/b" || second.Services[0].Key() != "xx/b" {
		t.Errorf("services not sorted by namespace, name")
	}

	changed, _ := DecodeFile("a.yaml", []byte(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}
`))
	if Build(append(objs[:2:2], changed...), nil).Version == first.Version {
		t.Error("a changed spec kept the same Version")
	}
}

func TestBuildReportsDuplicatesAndRejected(t *testing.T) {
	objs, diags := DecodeFile("a.yaml", []byte(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: p, namespace: ns}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: p, namespace: ns}
spec: {mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: broken, namespace: ns}
spec: {mtls: {mode: STRICTT}}
`))
	in := Build(objs, diags)
	if len(in.PeerAuthentications) != 1 || in.PeerAuthentications[0].Spec.GetMtls().GetMode().String() != "STRICT" {
		t.Errorf("peer authentications = %v, want the first definition", in.PeerAuthentications)
	}
	var dup bool
	for _, d := range in.Diagnostics {
		dup = dup || (d.IsError() && d.Message == "already defined at a.yaml#0; this definition is ignored" && d.Source.Doc == 1)
	}
	if !dup {
		t.Errorf("diagnostics = %v, want a duplicate error for doc 1", in.Diagnostics)
	}
	if len(in.Rejected) != 1 || in.Rejected[0].Ref() != "PeerAuthentication ns/broken" {
		t.Errorf("rejected = %v, want the broken policy", in.Rejected)
	}
}

func TestSidecarInjection(t *testing.T) {
	tests := []struct {
		name                string
		nsLabels            string
		labels, annotations string
		want                bool
	}{
		{"nothing", "", "", "", false},
		{"namespace label", "istio-injection: enabled", "", "", true},
		{"namespace label disabled", "istio-injection: disabled", "", "", false},
		{"pod annotation", "", "", `sidecar.istio.io/inject: "true"`, true},
		{"pod label", "", `sidecar.istio.io/inject: "true"`, "", true},
		{"annotation false overrides namespace", "istio-injection: enabled", "", `sidecar.istio.io/inject: "false"`, false},
		{"label false overrides namespace", "istio-injection: enabled", `sidecar.istio.io/inject: "false"`, "", false},
		{"tlsMode label", "", "security.istio.io/tlsMode: istio", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := build(t, `
apiVersion: v1
kind: Namespace
metadata:
  name: ns
  labels: {`+tt.nsLabels+`}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: ns}
spec:
  selector: {matchLabels: {app: d}}
  template:
    metadata:
      labels: {app: d, `+tt.labels+`}
      annotations: {`+tt.annotations+`}
    spec:
      containers: [{name: c, image: x}]
`)
			w := in.WorkloadByPod("ns", "d")
			if w == nil {
				t.Fatal("no workload for the Deployment")
			}
			if w.Sidecar != tt.want {
				t.Errorf("Sidecar = %v, want %v", w.Sidecar, tt.want)
			}
		})
	}
}

func TestWorkloadsFromDeploymentsAndPods(t *testing.T) {
	in := build(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {warden.io/pod-ip: 10.0.0.2}
    spec:
      serviceAccountName: web-sa
      containers:
      - name: a
        image: x
        ports: [{name: http, containerPort: 8080}]
      - name: b
        image: x
        ports: [{containerPort: 9090, protocol: UDP}]
---
apiVersion: v1
kind: Pod
metadata: {name: gw, namespace: istio-system, labels: {istio: ingressgateway}}
spec:
  containers: [{name: envoy, image: x}]
status: {podIP: 10.0.0.9}
`)
	want := []*Workload{
		{
			PodName: "web", ServiceAccount: "web-sa", IP: "10.0.0.2",
			PodLabels: map[string]string{"app": "web"}, PodAnnotations: map[string]string{"warden.io/pod-ip": "10.0.0.2"},
			Ports: []Port{{Name: "http", Port: 8080, Protocol: "TCP"}, {Port: 9090, Protocol: "UDP"}},
		},
		{
			PodName: "gw", ServiceAccount: "default", IP: "10.0.0.9", Gateway: true,
			PodLabels: map[string]string{"istio": "ingressgateway"},
		},
	}
	if len(in.Workloads) != 2 {
		t.Fatalf("workloads = %v", in.Workloads)
	}
	// Sorted by namespace: "app" before "istio-system".
	for i, w := range in.Workloads {
		got := *w
		got.Meta = Meta{}
		if diff := cmp.Diff(*want[i], got); diff != "" {
			t.Errorf("workload %d (-want +got):\n%s", i, diff)
		}
	}
	if in.Workloads[0].Kind != "Deployment" || in.Workloads[1].Kind != "Pod" {
		t.Errorf("workload kinds %q %q", in.Workloads[0].Kind, in.Workloads[1].Kind)
	}
	if !in.ServiceAccounts["app/default"] || in.Namespace("app") == nil {
		t.Error("implicit namespace or default service account missing")
	}
}

// TestMultipleCustomAuthzProvidersKey: the mesh ConfigMap key named after istiod's
// PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS (default false, as in Istio) is read
// strictly; a bad value is rejected with the field named.
func TestMultipleCustomAuthzProvidersKey(t *testing.T) {
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata: {mesh: \"\", PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS: %q}\n"
	if in := build(t, fmt.Sprintf(cm, "true")); !in.MultipleCustomAuthzProviders {
		t.Error("\"true\" not read")
	}
	if in := Build(nil, nil); in.MultipleCustomAuthzProviders {
		t.Error("default is true, want false")
	}
	objs, diags := decode(t, fmt.Sprintf(cm, "yes please"))
	if len(objs) != 0 || len(diags) != 1 || diags[0].Field != "data.PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS" {
		t.Errorf("objects %v diagnostics %v, want an error at data.PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS", objs, diags)
	}
}
