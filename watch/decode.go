package watch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigyaml "sigs.k8s.io/yaml"
)

// defaultNamespace is where namespaced objects without metadata.namespace go, as with
// kubectl apply without -n.
const defaultNamespace = "default"

// emptyFileMessage warns about a file with no content: often a file being rewritten
// in place (truncated, not yet written). RetainLastGood keeps the objects it served.
const emptyFileMessage = "empty file (being written?); objects it defined keep serving until it has content or is deleted"

// DecodeFile decodes every YAML (or JSON) document of one file. path only names the
// file in Sources and Diagnostics. Empty documents are skipped; `kind: List` documents
// contribute their items. Objects with errors are left out and reported with a
// Diagnostic of severity "error"; kinds Warden does not read are reported as warnings
// and skipped, except near misses of the kinds it reads (see unknownKind), which are
// errors.
func DecodeFile(path string, data []byte) ([]Object, []Diagnostic) {
	var (
		objs  []Object
		diags []Diagnostic
	)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, []Diagnostic{LocationDiagnostic(Location{File: path, Doc: -1}, SeverityWarning, emptyFileMessage)}
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 0; ; doc++ {
		chunk, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		src := Location{File: path, Doc: doc}
		if err != nil {
			diags = append(diags, LocationDiagnostic(src, SeverityError, "read document: "+err.Error()))
			break
		}
		o, d := decodeDocument(src, chunk)
		objs = append(objs, o...)
		diags = append(diags, d...)
	}
	return objs, diags
}

// MaxObjectBytes is the largest document (one object, as YAML or JSON) the decoder
// accepts: etcd's default request limit, the largest object a Kubernetes API server
// stores. A larger document is rejected before it is parsed, so one oversized object
// cannot stall every reload; its file's last good objects keep serving.
const MaxObjectBytes = 1536 * 1024

func decodeDocument(src Location, chunk []byte) ([]Object, []Diagnostic) {
	if len(chunk) > MaxObjectBytes {
		msg := fmt.Sprintf("document is %d bytes, over the %d-byte object limit", len(chunk), MaxObjectBytes)
		return nil, []Diagnostic{LocationDiagnostic(src, SeverityError, msg)}
	}
	data, err := sigyaml.YAMLToJSONStrict(chunk)
	if err != nil {
		d := LocationDiagnostic(src, SeverityError, "invalid YAML: "+cleanYAMLError(err))
		identify(&d, chunk)
		return nil, []Diagnostic{d}
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || string(t) == "null" {
		return nil, nil // empty document or comments only
	}
	return decodeJSON(src, data)
}

// decodeJSON decodes one object (or a List of them) given as JSON.
func decodeJSON(src Location, data []byte) ([]Object, []Diagnostic) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, []Diagnostic{LocationDiagnostic(src, SeverityError, "document is not an object")}
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	headErr := json.Unmarshal(data, &head) // identification; strict decoding reports the rest
	m := Meta{
		Kind:       head.Kind,
		APIVersion: head.APIVersion,
		Namespace:  head.Metadata.Namespace,
		Name:       head.Metadata.Name,
		Source:     src,
	}
	switch {
	case headErr != nil:
		field, msg := jsonFieldError("", headErr) // e.g. `name: y`, a boolean in YAML 1.1
		return nil, []Diagnostic{DiagnosticFor(&m, SeverityError, field, msg)}
	case m.Kind == "":
		return nil, []Diagnostic{DiagnosticFor(&m, SeverityError, "kind", "missing kind")}
	case m.APIVersion == "":
		return nil, []Diagnostic{DiagnosticFor(&m, SeverityError, "apiVersion", "missing apiVersion")}
	case m.Kind == "List" && m.APIVersion == "v1":
		return decodeList(src, raw["items"])
	}
	info, ok := lookupKind(m.APIVersion, m.Kind)
	if !ok {
		return nil, []Diagnostic{unknownKind(&m)}
	}
	if info.namespaced && m.Namespace == "" {
		m.Namespace = defaultNamespace
	}
	if !info.namespaced {
		m.Namespace = ""
	}
	if m.Name == "" {
		return nil, []Diagnostic{DiagnosticFor(&m, SeverityError, "metadata.name", "missing name")}
	}
	var (
		obj   Object
		diags []Diagnostic
	)
	if info.istio {
		obj, diags = decodeIstio(m, info, raw)
	} else {
		obj, diags = decodeKube(m, data)
	}
	for _, d := range diags {
		if d.IsError() {
			return nil, diags
		}
	}
	return []Object{obj}, diags
}

func decodeList(src Location, items json.RawMessage) ([]Object, []Diagnostic) {
	var list []json.RawMessage
	if err := json.Unmarshal(items, &list); err != nil && len(items) > 0 {
		return nil, []Diagnostic{DiagnosticFor(&Meta{Kind: "List", Source: src}, SeverityError, "items", "invalid value (want list)")}
	}
	var (
		objs  []Object
		diags []Diagnostic
	)
	for _, item := range list {
		o, d := decodeJSON(src, item)
		objs = append(objs, o...)
		diags = append(diags, d...)
	}
	return objs, diags
}

// cleanYAMLError drops the wrapping sigs.k8s.io/yaml adds around the parser's message.
func cleanYAMLError(err error) string {
	msg := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "yaml: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return strings.Join(strings.Fields(msg), " ")
}

// identify names the object of a document that failed strict YAML parsing (say, a
// duplicate key) when lenient parsing can still read its kind and name.
func identify(d *Diagnostic, chunk []byte) {
	var head struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if sigyaml.Unmarshal(chunk, &head) != nil || head.Kind == "" || head.Metadata.Name == "" {
		return
	}
	d.Kind, d.Name, d.Namespace = head.Kind, head.Metadata.Name, head.Metadata.Namespace
	if d.Namespace == "" && head.Kind != "Namespace" {
		d.Namespace = defaultNamespace
	}
}
