package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	sigyaml "sigs.k8s.io/yaml"

	"github.com/wardenmesh/warden/internal/golden"
	"github.com/wardenmesh/warden/watch"
)

// goldenCase is one testdata/<name>.in.yaml with the proxy it is translated for.
type goldenCase struct {
	name  string
	path  string
	in    *watch.Input
	proxy Proxy
}

// loadGoldenCases reads every case. The first line naming the proxy is
// "# proxy: <pod>.<namespace>" (with " gateway" for an ingress gateway); the rest
// are manifests.
func loadGoldenCases(t testing.TB) []goldenCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	var out []goldenCase
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		proxy, err := proxyHeader(data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		objs, diags := watch.DecodeFile(filepath.ToSlash(path), data)
		for _, d := range diags {
			if d.IsError() {
				t.Fatalf("%s: input rejected: %v", path, d)
			}
		}
		out = append(out, goldenCase{
			name:  strings.TrimSuffix(filepath.Base(path), ".in.yaml"),
			path:  path,
			in:    watch.Build(objs, diags),
			proxy: proxy,
		})
	}
	return out
}

func proxyHeader(data []byte) (Proxy, error) {
	for _, line := range strings.Split(string(data), "\n") {
		id, ok := strings.CutPrefix(strings.TrimSpace(line), "# proxy:")
		if !ok {
			continue
		}
		// "# proxy: <pod>.<namespace> gateway" translates an ingress gateway.
		id, kind, _ := strings.Cut(strings.TrimSpace(id), " ")
		pod, ns, ok := strings.Cut(id, ".")
		if !ok {
			return Proxy{}, fmt.Errorf("proxy %q is not <pod>.<namespace>", id)
		}
		return Proxy{ID: id, Namespace: ns, Pod: pod, Gateway: strings.TrimSpace(kind) == "gateway"}, nil
	}
	return Proxy{}, fmt.Errorf("no \"# proxy: <pod>.<namespace>\" line")
}

// renderOutput is the Output as YAML: each resource through protojson, keys sorted.
func renderOutput(out *Output) ([]byte, error) {
	doc := map[string]any{}
	for key, rs := range map[string][]types.Resource{
		"listeners": out.Listeners, "routes": out.Routes, "clusters": out.Clusters, "endpoints": out.Endpoints,
	} {
		list := []any{}
		for _, r := range rs {
			js, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(r)
			if err != nil {
				return nil, fmt.Errorf("render %s: %w", resourceName(r), err)
			}
			var v any
			if err := json.Unmarshal(js, &v); err != nil {
				return nil, fmt.Errorf("render %s: %w", resourceName(r), err)
			}
			list = append(list, v)
		}
		doc[key] = list
	}
	doc["secretNames"] = out.SecretNames
	diags := []any{}
	for _, d := range out.Diagnostics {
		diags = append(diags, map[string]any{
			"severity": d.Severity, "source": d.Source.String(), "kind": d.Kind,
			"namespace": d.Namespace, "name": d.Name, "field": d.Field, "message": d.Message,
		})
	}
	doc["diagnostics"] = diags
	return sigyaml.Marshal(doc)
}

func TestGolden(t *testing.T) {
	for _, gc := range loadGoldenCases(t) {
		t.Run(gc.name, func(t *testing.T) {
			got, err := renderOutput(Translate(gc.in, gc.proxy))
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, strings.TrimSuffix(gc.path, ".in.yaml")+".golden.yaml", got)
		})
	}
	golden.Prune(t, filepath.Join("testdata", "*.golden.yaml"))
}

// TestDeterministic translates every case 20 times from a fresh Index and requires
// byte-identical resources.
func TestDeterministic(t *testing.T) {
	for _, gc := range loadGoldenCases(t) {
		first := marshalOutput(t, Translate(gc.in, gc.proxy))
		for i := 1; i < 20; i++ {
			if got := marshalOutput(t, Translate(gc.in, gc.proxy)); !bytes.Equal(first, got) {
				t.Fatalf("%s: run %d differs from run 0", gc.name, i)
			}
		}
	}
}

func marshalOutput(t *testing.T, out *Output) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, rs := range [][]types.Resource{out.Listeners, out.Routes, out.Clusters, out.Endpoints} {
		for _, r := range rs {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&buf, "%s %d\n", resourceName(r), len(b))
			buf.Write(b)
		}
	}
	fmt.Fprintf(&buf, "%q %v\n", out.SecretNames, out.Diagnostics)
	return buf.Bytes()
}

// TestValidateAll checks every generated resource with its own proto validation and
// that no case lost a resource to validation.
func TestValidateAll(t *testing.T) {
	for _, gc := range loadGoldenCases(t) {
		out := Translate(gc.in, gc.proxy)
		for _, rs := range [][]types.Resource{out.Listeners, out.Routes, out.Clusters, out.Endpoints} {
			for _, r := range rs {
				if err := validate(r); err != nil {
					t.Errorf("%s: %v", gc.name, err)
				}
			}
		}
		for _, d := range out.Diagnostics {
			if d.Kind == "Translation" {
				t.Errorf("%s: %s", gc.name, d.Message)
			}
		}
	}
}
