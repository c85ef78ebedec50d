package xds

import (
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

func TestCheckNodeRejectsContradictions(t *testing.T) {
	id := Identity{Namespace: "shop", ServiceAccount: "web", Pod: "web-0"}
	md, err := NodeMetadata(id, map[string]string{"app": "web"}, []string{"10.0.0.2"}, false)
	if err != nil {
		t.Fatal(err)
	}
	ok := parseNode(&core.Node{Id: "web-0.shop", Metadata: md})
	if err := checkNode(id, ok); err != nil {
		t.Fatalf("matching node rejected: %v", err)
	}
	if ok.Labels["app"] != "web" || len(ok.IPs) != 1 || ok.Gateway {
		t.Fatalf("node metadata not parsed: %+v", ok)
	}
	other := Identity{Namespace: "shop", ServiceAccount: "admin", Pod: "web-0"}
	mdOther, _ := NodeMetadata(other, nil, nil, false)
	for name, n := range map[string]*core.Node{
		"another pod's node id":         {Id: "db-0.shop", Metadata: md},
		"another service account claim": {Id: "web-0.shop", Metadata: mdOther},
	} {
		err := checkNode(id, parseNode(n))
		if err == nil || !strings.Contains(err.Error(), "contradicts") {
			t.Errorf("%s: got %v, want a contradiction error", name, err)
		}
	}
}
