package scenario

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigyaml "sigs.k8s.io/yaml"
)

// InlineName is the name Read gives inline manifests.
const InlineName = "inline"

// Read returns the YAML of a manifest entry: the file's content (Path resolved against
// baseDir when relative) or the inline text, with metadata.namespace filled where
// absent when Namespace is set (see FillNamespace). name is the resolved file path,
// or InlineName for inline YAML. The result holds one non-empty document per
// `---`-separated part; it is empty when the entry holds no object at all.
func (m ManifestRef) Read(baseDir string) (name string, data []byte, err error) {
	switch {
	case m.Path != "" && m.Inline != "":
		return "", nil, errors.New("manifest has both path and inline")
	case m.Path != "":
		name = m.Path
		if !filepath.IsAbs(name) {
			name = filepath.Join(baseDir, name)
		}
		raw, err := os.ReadFile(name)
		if err != nil {
			return name, nil, fmt.Errorf("read manifest: %w", err)
		}
		data = raw
	case m.Inline != "":
		name, data = InlineName, []byte(m.Inline)
	default:
		return "", nil, errors.New("manifest has neither path nor inline")
	}
	data, err = FillNamespace(data, m.Namespace)
	if err != nil {
		return name, nil, fmt.Errorf("manifest %s: %w", name, err)
	}
	return name, data, nil
}

// clusterScoped lists the kinds that never get a namespace.
var clusterScoped = map[string]bool{
	"Namespace":                      true,
	"Node":                           true,
	"PersistentVolume":               true,
	"StorageClass":                   true,
	"PriorityClass":                  true,
	"RuntimeClass":                   true,
	"IngressClass":                   true,
	"ClusterRole":                    true,
	"ClusterRoleBinding":             true,
	"CustomResourceDefinition":       true,
	"APIService":                     true,
	"MutatingWebhookConfiguration":   true,
	"ValidatingWebhookConfiguration": true,
}

// ClusterScoped reports whether objects of kind have no namespace.
func ClusterScoped(kind string) bool { return clusterScoped[kind] }

// FillNamespace sets metadata.namespace to namespace on every document of a
// multi-document YAML stream that has none, as `kubectl apply -n` does, including the
// items of a `kind: List`. Documents that already name a namespace, and objects of a
// cluster-scoped kind, are kept byte for byte; changed documents are re-marshalled.
// Empty documents are dropped. With an empty namespace nothing is filled, but the
// documents are still checked to be YAML mappings.
func FillNamespace(data []byte, namespace string) ([]byte, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for i, doc := range docs {
		if namespace != "" {
			filled, changed, err := fillDocument(doc.obj, namespace)
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", i+1, err)
			}
			if changed {
				if doc.raw, err = sigyaml.Marshal(filled); err != nil {
					return nil, fmt.Errorf("document %d: marshal: %w", i+1, err)
				}
			}
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(bytes.TrimRight(doc.raw, "\n"))
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// document is one non-empty YAML document: its text and its decoded mapping.
type document struct {
	raw []byte
	obj map[string]any
}

// splitDocuments splits a YAML stream the way wardend reads files and decodes every
// non-empty document, which must be a mapping.
func splitDocuments(data []byte) ([]document, error) {
	var docs []document
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		chunk, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		js, err := sigyaml.YAMLToJSONStrict(chunk)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || string(t) == "null" {
			continue
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.UseNumber() // keeps integers exact when re-marshalled
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("document %d: want a mapping, got %s", n, describe(v))
		}
		docs = append(docs, document{raw: dropSeparators(chunk), obj: obj})
	}
}

// dropSeparators removes the `---` lines the YAML reader leaves at the start of a
// document that follows an empty one.
func dropSeparators(chunk []byte) []byte {
	for bytes.HasPrefix(chunk, []byte("---")) {
		line, rest, _ := bytes.Cut(chunk, []byte("\n"))
		if t := bytes.TrimSpace(line[3:]); len(t) > 0 && t[0] != '#' {
			break // `--- value`: the separator starts the document's content
		}
		chunk = rest
	}
	return chunk
}

// fillDocument fills the namespace of one object, or of the items of a List.
func fillDocument(obj map[string]any, namespace string) (map[string]any, bool, error) {
	if obj["kind"] != "List" {
		changed, err := fillObject(obj, namespace)
		return obj, changed, err
	}
	items, ok := obj["items"].([]any)
	if !ok {
		return obj, false, nil
	}
	changed := false
	for i, item := range items {
		o, ok := item.(map[string]any)
		if !ok {
			return nil, false, fmt.Errorf("items[%d]: want a mapping, got %s", i, describe(item))
		}
		c, err := fillObject(o, namespace)
		if err != nil {
			return nil, false, fmt.Errorf("items[%d]: %w", i, err)
		}
		changed = changed || c
	}
	return obj, changed, nil
}

// fillObject sets metadata.namespace when absent or empty on a namespaced object.
func fillObject(obj map[string]any, namespace string) (bool, error) {
	if kind, _ := obj["kind"].(string); ClusterScoped(kind) {
		return false, nil
	}
	var meta map[string]any
	switch m := obj["metadata"].(type) {
	case nil:
		meta = map[string]any{}
		obj["metadata"] = meta
	case map[string]any:
		meta = m
	default:
		return false, fmt.Errorf("metadata: want a mapping, got %s", describe(m))
	}
	if ns, _ := meta["namespace"].(string); ns != "" {
		return false, nil
	}
	meta["namespace"] = namespace
	return true, nil
}
