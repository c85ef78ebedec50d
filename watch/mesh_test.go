package watch_test

import (
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/watch"
)

func meshConfigMap(td string) string {
	return "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    trustDomain: " + td + "\n"
}

// A MeshConfig trustDomain change is not applied at all until wardend restarts (issue
// 12 item 4): translation keeps the domain the certificates were minted for. Istio
// re-reads trustDomain live (pilot/pkg/features, mesh watcher) but istiod's CA then
// keeps signing the old one until restart too; Warden chooses "never half": both stay.
func TestWithTrustDomainKeepsServingDomain(t *testing.T) {
	base, err := os.ReadFile("../translate/testdata/dr-empty-workload-selector.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, diags := watch.DecodeFile("mesh.yaml", append(base, meshConfigMap("new.example")...))
	in := watch.Build(objs, diags)
	if in.TrustDomain != "new.example" {
		t.Fatalf("trust domain = %s", in.TrustDomain)
	}
	pinned := in.WithTrustDomain("old.example")
	if pinned.TrustDomain != "old.example" || pinned.Mesh.GetTrustDomain() != "old.example" || in.TrustDomain != "new.example" {
		t.Errorf("pinned %s/%s, original %s", pinned.TrustDomain, pinned.Mesh.GetTrustDomain(), in.TrustDomain)
	}
	want := `mesh.yaml#` // the ConfigMap's document
	var got []string
	for _, d := range pinned.Diagnostics {
		got = append(got, d.String())
	}
	wantMsg := `ConfigMap istio-system/istio: data.mesh.trustDomain: warning: trustDomain "new.example" is not applied until wardend restarts; translation and certificates keep "old.example"`
	if len(got) != 1 || !strings.HasPrefix(got[0], want) || !strings.HasSuffix(got[0], wantMsg) {
		t.Errorf("diagnostics = %q, want one ending %q", got, wantMsg)
	}

	out := translate.Translate(pinned, translate.Proxy{ID: "web.foo", Namespace: "foo", Pod: "web", ServiceAccount: "web"})
	var all strings.Builder
	for _, rs := range [][]proto.Message{msgs(out.Listeners), msgs(out.Clusters)} {
		for _, r := range rs {
			b, _ := protojson.Marshal(r)
			all.Write(b)
		}
	}
	if s := all.String(); !strings.Contains(s, "spiffe://old.example/") || strings.Contains(s, "new.example") {
		t.Errorf("translation does not use only the serving trust domain old.example:\n%.2000s", s)
	}
	if in.WithTrustDomain("new.example") != in {
		t.Error("an unchanged trust domain copied the Input")
	}
}

func msgs[T any](rs []T) []proto.Message {
	out := make([]proto.Message, 0, len(rs))
	for _, r := range rs {
		out = append(out, any(r).(proto.Message))
	}
	return out
}
