package translate

import (
	"strings"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/wardenmesh/warden/internal/meshtest"

	"github.com/google/go-cmp/cmp"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/wardenmesh/warden/watch"
)

const (
	unset      = security.PeerAuthentication_MutualTLS_UNSET
	strict     = security.PeerAuthentication_MutualTLS_STRICT
	permissive = security.PeerAuthentication_MutualTLS_PERMISSIVE
	disable    = security.PeerAuthentication_MutualTLS_DISABLE
)

// peerAuthn builds a PeerAuthentication; policies are listed oldest first in tests,
// as watch sorts them.
func peerAuthn(ns, name string, sel map[string]string, mode security.PeerAuthentication_MutualTLS_Mode, ports map[uint32]security.PeerAuthentication_MutualTLS_Mode) *watch.Config[*security.PeerAuthentication] {
	spec := &security.PeerAuthentication{Mtls: &security.PeerAuthentication_MutualTLS{Mode: mode}}
	if sel != nil {
		spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: sel}
	}
	if ports != nil {
		spec.PortLevelMtls = map[uint32]*security.PeerAuthentication_MutualTLS{}
		for p, m := range ports {
			spec.PortLevelMtls[p] = &security.PeerAuthentication_MutualTLS{Mode: m}
		}
	}
	return &watch.Config[*security.PeerAuthentication]{
		Meta: watch.Meta{Kind: "PeerAuthentication", Namespace: ns, Name: name},
		Spec: spec,
	}
}

func TestResolveMTLS(t *testing.T) {
	app := map[string]string{"app": "foo", "version": "v1"}
	type pa = *watch.Config[*security.PeerAuthentication]
	cases := []struct {
		name     string
		policies []pa
		ns       string
		labels   map[string]string
		want     MTLS
	}{
		{
			name: "no policy is permissive by default",
			ns:   "foo", labels: app,
			want: MTLS{Mode: ModePermissive},
		},
		{
			name:     "mesh only",
			policies: []pa{peerAuthn("istio-system", "default", nil, strict, nil)},
			ns:       "foo", labels: app,
			want: MTLS{Mode: ModeStrict, Policy: "istio-system/default", MeshPolicy: "istio-system/default"},
		},
		{
			name:     "mesh UNSET means permissive",
			policies: []pa{peerAuthn("istio-system", "default", nil, unset, nil)},
			ns:       "foo", labels: app,
			want: MTLS{Mode: ModePermissive, MeshPolicy: "istio-system/default"},
		},
		{
			name: "mesh with empty matchLabels is mesh scope",
			policies: []pa{
				peerAuthn("istio-system", "default", map[string]string{}, disable, nil),
			},
			ns: "foo", labels: app,
			want: MTLS{Mode: ModeDisable, Policy: "istio-system/default", MeshPolicy: "istio-system/default"},
		},
		{
			name: "namespace overrides mesh",
			policies: []pa{
				peerAuthn("istio-system", "default", nil, permissive, nil),
				peerAuthn("foo", "default", nil, strict, nil),
			},
			ns: "foo", labels: app,
			want: MTLS{Mode: ModeStrict, Policy: "foo/default", MeshPolicy: "istio-system/default", NamespacePolicy: "foo/default"},
		},
		{
			name: "other namespace's policy does not apply",
			policies: []pa{
				peerAuthn("istio-system", "default", nil, permissive, nil),
				peerAuthn("bar", "default", nil, strict, nil),
				peerAuthn("bar", "wl", map[string]string{"app": "foo"}, disable, nil),
			},
			ns: "foo", labels: app,
			want: MTLS{Mode: ModePermissive, Policy: "istio-system/default", MeshPolicy: "istio-system/default"},
		},
		{
			name: "ignore selector in root namespace",
			policies: []pa{
				peerAuthn("istio-system", "default", nil, strict, nil),
				peerAuthn("istio-system", "with-selector", map[string]string{"app": "foo"}, disable, nil),
			},
			ns: "foo", labels: app,
			want: MTLS{Mode: ModeStrict, Policy: "istio-system/default", MeshPolicy: "istio-system/default"},
		},
		{
			name: "workload overrides namespace and mesh",
			policies: []pa{
				peerAuthn("istio-system", "default", nil, strict, nil),
				peerAuthn("foo", "default", nil, strict, nil),
				peerAuthn("foo", "wl", map[string]string{"app": "foo"}, permissive, nil),
			},
			ns: "foo", labels: app,
			want: MTLS{Mode: ModePermissive, Policy: "foo/wl", MeshPolicy: "istio-system/default", NamespacePolicy: "foo/default", WorkloadPolicy: "foo/wl"},
		},
		{
			name: "workload selector not matching is ignored",
			policies: []pa{
				peerAuthn("foo", "default", nil, strict, nil),
				peerAuthn("foo", "wl", map[string]string{"app": "bar"}, disable, nil),
			},
			ns: "foo", labels: app,
			want: MTLS{Mode: ModeStrict, Policy: "foo/default", NamespacePolicy: "foo/default"},
		},
		{
			name: "oldest mesh policy wins",
			policies: []pa{
				peerAuthn("istio-system", "old", nil, disable, nil),
				peerAuthn("istio-system", "new", nil, strict, nil),
			},
			ns: "foo", labels: app,
			want: MTLS{Mode: ModeDisable, Policy: "istio-system/old", MeshPolicy: "istio-system/old"},
		},
		{
			name: "oldest namespace policy wins",
			policies: []pa{
				peerAuthn("foo", "old", nil, permissive, nil),
				peerAuthn("foo", "new", nil, strict, nil),
			},
			ns: "foo", labels: app,
			want: MTLS{Mode: ModePermissive, Policy: "foo/old", NamespacePolicy: "foo/old"},
		},
		{
			name: "oldest workload policy wins, no merging",
			policies: []pa{
				peerAuthn("foo", "old", map[string]string{"app": "foo"}, strict, map[uint32]security.PeerAuthentication_MutualTLS_Mode{8080: disable}),
				peerAuthn("foo", "new", map[string]string{"version": "v1"}, disable, map[uint32]security.PeerAuthentication_MutualTLS_Mode{9090: permissive}),
			},
			ns: "foo", labels: app,
			want: MTLS{
				Mode: ModeStrict, Policy: "foo/old", WorkloadPolicy: "foo/old",
				Ports: map[uint32]Mode{8080: ModeDisable}, PortPolicy: map[uint32]string{8080: "foo/old"},
			},
		},
		{
			name: "UNSET at namespace and workload inherit mesh",
			policies: []pa{
				peerAuthn("istio-system", "default", nil, strict, nil),
				peerAuthn("foo", "default", nil, unset, nil),
				peerAuthn("foo", "wl", map[string]string{"app": "foo"}, unset, nil),
			},
			ns: "foo", labels: app,
			want: MTLS{Mode: ModeStrict, Policy: "istio-system/default", MeshPolicy: "istio-system/default", NamespacePolicy: "foo/default", WorkloadPolicy: "foo/wl"},
		},
		{
			name: "UNSET workload inherits namespace DISABLE",
			policies: []pa{
				peerAuthn("istio-system", "default", nil, strict, nil),
				peerAuthn("foo", "default", nil, disable, nil),
				peerAuthn("foo", "wl", map[string]string{"app": "foo"}, unset, nil),
			},
			ns: "foo", labels: app,
			want: MTLS{Mode: ModeDisable, Policy: "foo/default", MeshPolicy: "istio-system/default", NamespacePolicy: "foo/default", WorkloadPolicy: "foo/wl"},
		},
		{
			name: "port level overrides with UNSET taking the workload mode",
			policies: []pa{
				peerAuthn("istio-system", "default", nil, permissive, nil),
				peerAuthn("foo", "wl", map[string]string{"app": "foo"}, strict,
					map[uint32]security.PeerAuthentication_MutualTLS_Mode{8080: disable, 9090: unset, 7070: permissive}),
			},
			ns: "foo", labels: app,
			want: MTLS{
				Mode: ModeStrict, Policy: "foo/wl", MeshPolicy: "istio-system/default", WorkloadPolicy: "foo/wl",
				Ports:      map[uint32]Mode{8080: ModeDisable, 9090: ModeStrict, 7070: ModePermissive},
				PortPolicy: map[uint32]string{8080: "foo/wl", 9090: "foo/wl", 7070: "foo/wl"},
			},
		},
		{
			name: "port UNSET under an UNSET workload takes the inherited mode and its policy",
			policies: []pa{
				peerAuthn("foo", "default", nil, strict, nil),
				peerAuthn("foo", "wl", map[string]string{"app": "foo"}, unset,
					map[uint32]security.PeerAuthentication_MutualTLS_Mode{9090: unset, 8080: disable}),
			},
			ns: "foo", labels: app,
			want: MTLS{
				Mode: ModeStrict, Policy: "foo/default", NamespacePolicy: "foo/default", WorkloadPolicy: "foo/wl",
				Ports:      map[uint32]Mode{9090: ModeStrict, 8080: ModeDisable},
				PortPolicy: map[uint32]string{9090: "foo/default", 8080: "foo/wl"},
			},
		},
		{
			name: "workload in the root namespace gets only the mesh policy",
			policies: []pa{
				peerAuthn("istio-system", "default", nil, strict, nil),
				peerAuthn("istio-system", "wl", map[string]string{"app": "foo"}, disable, nil),
			},
			ns: "istio-system", labels: app,
			want: MTLS{Mode: ModeStrict, Policy: "istio-system/default", MeshPolicy: "istio-system/default"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &watch.Input{RootNamespace: "istio-system", PeerAuthentications: tc.policies}
			got := ResolveMTLS(in, tc.ns, tc.labels)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ResolveMTLS (-want +got):\n%s", diff)
			}
			if viaIndex := NewIndex(in).ResolveMTLS(tc.ns, tc.labels); !cmp.Equal(got, viaIndex) {
				t.Errorf("Index.ResolveMTLS differs: %+v vs %+v", viaIndex, got)
			}
		})
	}
}

func TestResolveMTLSCustomRootNamespace(t *testing.T) {
	in := &watch.Input{RootNamespace: "mesh-root", PeerAuthentications: []*watch.Config[*security.PeerAuthentication]{
		peerAuthn("istio-system", "default", nil, strict, nil), // an ordinary namespace here
		peerAuthn("mesh-root", "default", nil, disable, nil),
	}}
	if got := ResolveMTLS(in, "foo", nil); got.Mode != ModeDisable || got.Policy != "mesh-root/default" {
		t.Errorf("foo: got %v from %q, want DISABLE from mesh-root/default", got.Mode, got.Policy)
	}
	if got := ResolveMTLS(in, "istio-system", nil); got.Mode != ModeStrict || got.Policy != "istio-system/default" {
		t.Errorf("istio-system: got %v from %q, want STRICT from istio-system/default", got.Mode, got.Policy)
	}
}

func TestPortMode(t *testing.T) {
	m := MTLS{
		Mode: ModeStrict, Policy: "foo/wl",
		Ports:      map[uint32]Mode{8080: ModeDisable},
		PortPolicy: map[uint32]string{8080: "foo/wl-port"},
	}
	if got := m.PortMode(8080); got != ModeDisable {
		t.Errorf("PortMode(8080) = %v, want DISABLE", got)
	}
	if got, pol := m.PortDecision(9090); got != ModeStrict || pol != "foo/wl" {
		t.Errorf("PortDecision(9090) = %v %q, want STRICT foo/wl", got, pol)
	}
	if got := m.PortList(); !cmp.Equal(got, []uint32{8080}) {
		t.Errorf("PortList = %v", got)
	}
}

func TestModeString(t *testing.T) {
	for mode, want := range map[Mode]string{ModeStrict: "STRICT", ModePermissive: "PERMISSIVE", ModeDisable: "DISABLE"} {
		if got := mode.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", mode, got, want)
		}
	}
}

// TestRejectedPeerAuthenticationFailsClosed: a PeerAuthentication whose only version
// is rejected (a mode typo here) has an unknown mode and selector, so every workload
// it might cover is STRICT until it is fixed or deleted (issue 12, item 1). A
// rejected namespace policy covers its namespace only; a rejected root-namespace
// policy covers the mesh. Istio would have refused the object at admission
// (pkg/config/validation: the mode enum); without a webhook Warden must not fall
// back to the PERMISSIVE policy beside it.
func TestRejectedPeerAuthenticationFailsClosed(t *testing.T) {
	base := meshtest.Join(meshtest.RootNamespace, meshtest.Web) + `---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: bar, labels: {app: api}}
spec:
  containers: [{name: api, image: x, ports: [{containerPort: 8080}]}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo, creationTimestamp: "2024-01-01T00:00:00Z"}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ports, namespace: foo, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  selector: {matchLabels: {app: web}}
  portLevelMtls: {8080: {mode: DISABLE}}
`
	typo := func(ns string) string {
		return "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: typo, namespace: " + ns +
			"}\nspec: {mtls: {mode: STRIKT}}\n"
	}
	cases := []struct {
		name             string
		extra            string
		wantFoo, wantBar Mode
		rejected         string
	}{
		{"no typo: the valid policies decide", "", ModePermissive, ModePermissive, ""},
		{"typo in foo: foo fails closed, bar untouched", typo("foo"), ModeStrict, ModePermissive, "foo/typo"},
		{"typo in the root namespace: the mesh fails closed", typo("istio-system"), ModeStrict, ModeStrict, "istio-system/typo"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := meshtest.Input(t, base)
			if c.extra != "" {
				in = meshtest.InputAllowingErrors(t, base, c.extra)
			}
			if c.rejected != "" && len(in.Rejected) != 1 {
				t.Fatalf("want the typo rejected, got Rejected=%v diagnostics=%v", in.Rejected, in.Diagnostics)
			}
			foo := ResolveMTLS(in, "foo", map[string]string{"app": "web"})
			bar := ResolveMTLS(in, "bar", map[string]string{"app": "api"})
			if foo.Mode != c.wantFoo || bar.Mode != c.wantBar || foo.Rejected != c.rejected {
				t.Fatalf("foo %v (rejected %q), bar %v; want foo %v (rejected %q), bar %v",
					foo.Mode, foo.Rejected, bar.Mode, c.wantFoo, c.rejected, c.wantBar)
			}
			// The port-level DISABLE of foo/ports must not survive a fail-closed scope.
			if got := foo.PortMode(8080); c.rejected != "" && got != ModeStrict {
				t.Fatalf("port 8080 of foo/web is %v under a rejected policy, want STRICT", got)
			}
			// What Envoy gets: no inbound chain of foo/web accepts plaintext.
			out := Translate(in, Proxy{ID: "web.foo", Namespace: "foo", Pod: "web"})
			plain := false
			for _, r := range out.Listeners {
				if l := r.(*listener.Listener); l.GetName() == inboundListenerName {
					for _, fc := range l.GetFilterChains() {
						plain = plain || (fc.GetName() != inboundListenerName+"-blackhole" && fc.GetTransportSocket() == nil)
					}
				}
			}
			if want := c.wantFoo != ModeStrict; plain != want {
				t.Fatalf("foo/web inbound chains %v: plaintext chain present=%v, want %v", inboundChainNames(t, out), plain, want)
			}
			if c.rejected != "" {
				var d WorkloadDescription
				for _, w := range in.Workloads {
					if w.Namespace == "foo" && w.PodName == "web" {
						d = NewIndex(in).describe(w, true)
					}
				}
				if !strings.Contains(d.MTLS.Reason, c.rejected+" was rejected") {
					t.Fatalf("describe does not name the rejected policy: %q", d.MTLS.Reason)
				}
			}
		})
	}
}
