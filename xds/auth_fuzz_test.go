package xds

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wardenmesh/warden/watch"
)

// fuzzNodeSeed is a node as `wardenctl bootstrap` writes it, proto-encoded.
func fuzzNodeSeed(f *testing.F, id Identity, nodeID string, labels map[string]string, ips []string, gateway bool, extra map[string]any) []byte {
	f.Helper()
	md, err := NodeMetadata(id, labels, ips, gateway)
	if err != nil {
		f.Fatal(err)
	}
	for k, v := range extra {
		val, err := structpb.NewValue(v)
		if err != nil {
			f.Fatal(err)
		}
		md.Fields[k] = val
	}
	n := &core.Node{Id: nodeID, Cluster: "warden", Metadata: md,
		UserAgentName: "envoy", UserAgentVersionType: &core.Node_UserAgentBuildVersion{
			UserAgentBuildVersion: &core.BuildVersion{Version: &typev3.SemanticVersion{MajorNumber: 1, MinorNumber: 40}}}}
	b, err := proto.Marshal(n)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// goldenWorkloads are the workloads of every golden input of translate/testdata (read
// when the test runs): the identities, labels and IPs the node fuzzers start from.
func goldenWorkloads(f *testing.F) []*watch.Workload {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "translate", "testdata", "*.in.yaml"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no golden inputs in translate/testdata: %v", err)
	}
	var out []*watch.Workload
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		objs, diags := watch.DecodeFile(p, data)
		out = append(out, watch.Build(objs, diags).Workloads...)
	}
	if len(out) == 0 {
		f.Fatal("the golden inputs hold no workload")
	}
	return out
}

// FuzzCheckNode decodes a core.Node from the fuzz bytes (or, when they are not a
// node, uses them as the node id) and checks it against an identity. checkNode
// accepts exactly when the node id is the identity's NodeID and no string value of
// NAMESPACE, POD_NAME or SERVICE_ACCOUNT names something else; parseNode reads what
// the metadata says and never panics.
func FuzzCheckNode(f *testing.F) {
	web := Identity{Namespace: "shop", ServiceAccount: "web", Pod: "web-0"}
	labels := map[string]string{"app": "web", "version": "v1"}
	ips := []string{"10.0.0.2", "fd00::2"}
	add := func(node []byte, id Identity, derive bool) {
		f.Add(node, id.Namespace, id.ServiceAccount, id.Pod, derive)
	}
	for _, w := range goldenWorkloads(f) {
		id := Identity{Namespace: w.Namespace, ServiceAccount: w.ServiceAccount, Pod: w.PodName}
		var wips []string
		if w.IP != "" {
			wips = []string{w.IP}
		}
		add(fuzzNodeSeed(f, id, w.PodName+"."+w.Namespace, w.PodLabels, wips, w.Gateway, nil), id, false)
	}
	add(fuzzNodeSeed(f, web, "web-0.shop", labels, ips, false, nil), web, false)
	add(fuzzNodeSeed(f, web, "web-0.shop", labels, ips, false, nil), web, true)
	add(fuzzNodeSeed(f, web, "web-0.shop", nil, nil, true, nil), web, false)
	add(fuzzNodeSeed(f, web, "db-0.shop", labels, ips, false, nil), web, false)
	add(fuzzNodeSeed(f, Identity{Namespace: "shop", ServiceAccount: "admin", Pod: "web-0"}, "web-0.shop", labels, ips, false, nil), web, false)
	add(fuzzNodeSeed(f, Identity{}, "web-0.shop", nil, nil, false, nil), web, false)
	add(fuzzNodeSeed(f, web, "web-0.shop", labels, ips, false, map[string]any{
		MetaNamespace: 5.0, MetaLabels: "app=web", MetaInstanceIPs: true, MetaProxyType: []any{"gateway"},
	}), web, false)
	add(fuzzNodeSeed(f, web, "web-0.shop", labels, ips, false, map[string]any{
		MetaServiceAccount: map[string]any{"name": "admin"}, MetaLabels: map[string]any{"app": 1.0, "x": nil},
	}), web, false)
	add(fuzzNodeSeed(f, Identity{Namespace: "c", Pod: "a.b", ServiceAccount: "x"}, "a.b.c", nil, nil, false, nil),
		Identity{Namespace: "b.c", Pod: "a", ServiceAccount: "x"}, false)
	add([]byte("web-0.shop"), web, false)
	add([]byte{}, Identity{}, false)
	add([]byte{0x0a, 0xff}, web, true)

	f.Fuzz(func(t *testing.T, nodeBytes []byte, ns, sa, pod string, derive bool) {
		n := &core.Node{}
		if err := proto.Unmarshal(nodeBytes, n); err != nil {
			n = &core.Node{Id: string(nodeBytes)}
		}
		id := Identity{Namespace: ns, ServiceAccount: sa, Pod: pod}
		if derive { // the identity the node id names, so that acceptance is reachable
			if p, s, ok := strings.Cut(n.GetId(), "."); ok {
				id.Pod, id.Namespace = p, s
			}
		}
		ni := parseNode(n)
		md := n.GetMetadata().GetFields()
		str := func(k string) string { return md[k].GetStringValue() }

		if ni.ID != n.GetId() || ni.Namespace != str(MetaNamespace) || ni.Pod != str(MetaPodName) ||
			ni.ServiceAccount != str(MetaServiceAccount) || ni.Gateway != (str(MetaProxyType) == "gateway") {
			t.Fatalf("parseNode = %+v, not what node %v says", ni, n)
		}
		wantLabels := map[string]string{}
		for k, v := range md[MetaLabels].GetStructValue().GetFields() {
			wantLabels[k] = v.GetStringValue()
		}
		if !maps.Equal(ni.Labels, wantLabels) {
			t.Fatalf("labels %v, want %v", ni.Labels, wantLabels)
		}
		if ips := str(MetaInstanceIPs); (ips == "") != (ni.IPs == nil) || (ips != "" && strings.Join(ni.IPs, ",") != ips) {
			t.Fatalf("IPs %q from %q", ni.IPs, ips)
		}
		if v := n.GetUserAgentBuildVersion().GetVersion(); v != nil {
			if want := fmt.Sprintf("%d.%d.%d", v.GetMajorNumber(), v.GetMinorNumber(), v.GetPatch()); ni.EnvoyVersion != want {
				t.Fatalf("Envoy version %q, want %q", ni.EnvoyVersion, want)
			}
		}

		err := checkNode(id, ni)
		contradicts := func(key, want string) bool { return str(key) != "" && str(key) != want }
		wantOK := n.GetId() == id.Pod+"."+id.Namespace &&
			!contradicts(MetaNamespace, id.Namespace) && !contradicts(MetaPodName, id.Pod) &&
			!contradicts(MetaServiceAccount, id.ServiceAccount)
		if (err == nil) != wantOK {
			t.Fatalf("checkNode(%+v, node id %q, metadata %v) = %v, want accepted %v", id, n.GetId(), md, err, wantOK)
		}
		if err != nil && !strings.Contains(err.Error(), "contradicts") {
			t.Fatalf("error %q does not say the node contradicts the token", err)
		}
		// The same checks on a copy give the same answer: nothing depends on map order.
		if err2 := checkNode(id, parseNode(proto.Clone(n).(*core.Node))); (err2 == nil) != (err == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("checkNode not deterministic: %v then %v", err, err2)
		}
	})
}

// FuzzNodeMetadata: what NodeMetadata writes for an identity, sent as the node of
// that identity, is always accepted and parses back to the same labels, IPs and type.
func FuzzNodeMetadata(f *testing.F) {
	for _, w := range goldenWorkloads(f) {
		k, v := "", ""
		for _, lk := range slices.Sorted(maps.Keys(w.PodLabels)) {
			k, v = lk, w.PodLabels[lk]
			break
		}
		f.Add(w.Namespace, w.ServiceAccount, w.PodName, k, v, w.IP, w.Gateway)
	}
	f.Add("shop", "web", "web-0", "app", "web", "10.0.0.2", false)
	f.Add("istio-system", "istio-ingressgateway", "gw-0", "istio", "ingressgateway", "10.0.0.9,fd00::9", true)
	f.Add("a.b", "sa", "p", "", "", "", false)
	f.Add("ns", "sa", "pod", "k", "v\xff", ",", false)
	f.Fuzz(func(t *testing.T, ns, sa, pod, lk, lv, ips string, gateway bool) {
		id := Identity{Namespace: ns, ServiceAccount: sa, Pod: pod}
		var ipList []string
		if ips != "" {
			ipList = strings.Split(ips, ",")
		}
		md, err := NodeMetadata(id, map[string]string{lk: lv}, ipList, gateway)
		if err != nil {
			return // structpb refuses invalid UTF-8
		}
		b, err := proto.Marshal(&core.Node{Id: id.NodeID(), Metadata: md})
		if err != nil {
			t.Fatal(err)
		}
		n := &core.Node{}
		if err := proto.Unmarshal(b, n); err != nil {
			t.Fatal(err)
		}
		ni := parseNode(n)
		if err := checkNode(id, ni); err != nil {
			t.Fatalf("bootstrap metadata of %+v rejected: %v", id, err)
		}
		if ni.Labels[lk] != lv || len(ni.Labels) != 1 || !slices.Equal(ni.IPs, ipList) || ni.Gateway != gateway {
			t.Fatalf("parsed %+v from labels {%q: %q}, IPs %q, gateway %v", ni, lk, lv, ipList, gateway)
		}
	})
}

// FuzzBearerToken: bearerToken takes the first `authorization` value of the stream
// metadata; it returns the trimmed token after "Bearer ", or an error that is
// errUnauthenticated and no token.
func FuzzBearerToken(f *testing.F) {
	f.Add("authorization", "Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln", "", uint8(1))
	f.Add("Authorization", "Bearer  tok \t", "Bearer other", uint8(2))
	f.Add("authorization", "bearer tok", "Bearer tok", uint8(2))
	f.Add("authorization", "Basic dXNlcjpwYXNz", "", uint8(1))
	f.Add("authorization", "Bearer ", "", uint8(1))
	f.Add("authorization", "Bearer", "", uint8(1))
	f.Add("x-authorization", "Bearer tok", "", uint8(1))
	f.Add("authorization-bin", "Bearer tok", "", uint8(1))
	f.Add("", "", "", uint8(0))
	f.Fuzz(func(t *testing.T, key, v1, v2 string, shape uint8) {
		ctx := context.Background()
		var md metadata.MD
		switch shape % 4 {
		case 1:
			md = metadata.Pairs(key, v1)
		case 2:
			md = metadata.Pairs(key, v1, key, v2)
		case 3:
			md = metadata.MD{}
		}
		if md != nil {
			ctx = metadata.NewIncomingContext(ctx, md)
		}
		tok, err := bearerToken(ctx)
		vals := md.Get("authorization")
		if err != nil {
			if !errors.Is(err, errUnauthenticated) || tok != "" {
				t.Fatalf("bearerToken = %q, %v: want errUnauthenticated and no token", tok, err)
			}
			if len(vals) > 0 && strings.HasPrefix(vals[0], "Bearer ") {
				t.Fatalf("Bearer credential %q refused: %v", vals[0], err)
			}
			return
		}
		if len(vals) == 0 || !strings.HasPrefix(vals[0], "Bearer ") {
			t.Fatalf("token %q from metadata %v without a Bearer credential", tok, md)
		}
		if want := strings.TrimSpace(vals[0][len("Bearer "):]); tok != want {
			t.Fatalf("token %q, want %q", tok, want)
		}
	})
}
