package meshtest

import (
	"strings"
	"testing"
)

// TestBaseMeshesDecodeClean: every named mesh decodes with no diagnostic and has the
// workloads its doc names.
func TestBaseMeshesDecodeClean(t *testing.T) {
	for _, c := range []struct {
		name, mesh string
		pods       []string
	}{
		{"Httpbin", Httpbin, []string{"foo/httpbin", "foo/sleep", "legacy/sleep"}},
		{"Web", Web, []string{"foo/web"}},
		{"Shop", Shop, []string{"other/cli", "shop/db-0"}},
	} {
		in := Clean(t, RootNamespace, c.mesh)
		var got []string
		for _, w := range in.Workloads {
			got = append(got, w.Namespace+"/"+w.PodName)
		}
		if strings.Join(got, ",") != strings.Join(c.pods, ",") {
			t.Errorf("%s: workloads %v, want %v", c.name, got, c.pods)
		}
	}
}

// TestBuilders: the policy builders and MeshConfig decode into the objects they name.
func TestBuilders(t *testing.T) {
	in := Input(t, Web,
		AuthorizationPolicy("deny", "foo", `{action: DENY, rules: [{}]}`),
		PeerAuthentication("default", "istio-system", `{mtls: {mode: STRICT}}`),
		MeshConfig("trustDomain: example.org\nrootNamespace: istio-system\n"))
	if len(in.AuthorizationPolicies) != 1 || in.AuthorizationPolicies[0].Key() != "foo/deny" ||
		len(in.PeerAuthentications) != 1 || in.Mesh.GetTrustDomain() != "example.org" {
		t.Fatalf("policies %d, peer authentications %d, trust domain %q", len(in.AuthorizationPolicies), len(in.PeerAuthentications), in.Mesh.GetTrustDomain())
	}
	if bad := InputAllowingErrors(t, Web, PeerAuthentication("typo", "foo", `{mtls: {mode: STRIKT}}`)); len(bad.Rejected) != 1 {
		t.Fatalf("a rejected object must be listed: %v", bad.Rejected)
	}
}
