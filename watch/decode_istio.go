package watch

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// istioTopLevel are the fields an Istio object may have; status is accepted and ignored.
var istioTopLevel = map[string]bool{"apiVersion": true, "kind": true, "metadata": true, "spec": true, "status": true}

// decodeIstio strictly decodes an Istio object's metadata and spec, then runs the
// semantic checks of Istio's validating webhook for that kind.
func decodeIstio(m Meta, info kindInfo, raw map[string]json.RawMessage) (Object, []Diagnostic) {
	var diags []Diagnostic
	for _, key := range sortedKeys(raw) {
		if !istioTopLevel[key] {
			diags = append(diags, DiagnosticFor(&m, SeverityError, key, "unknown field"))
		}
	}
	if md, ok := raw["metadata"]; ok {
		var om metav1.ObjectMeta
		if err := unmarshalStrict(md, &om); err != nil {
			field, msg := jsonFieldError("metadata", err)
			diags = append(diags, DiagnosticFor(&m, SeverityError, field, msg))
		} else {
			setMeta(&m, &om)
		}
	}
	spec := info.newSpec().(proto.Message)
	if data, ok := raw["spec"]; ok && !isNull(data) {
		if fe := decodeProtoStrict("spec", data, spec); fe != nil {
			return Object{}, append(diags, DiagnosticFor(&m, SeverityError, fe.Field, fe.Message))
		}
		var tree any
		if err := json.Unmarshal(data, &tree); err == nil {
			for _, fe := range validateSpec(spec, tree) {
				diags = append(diags, DiagnosticFor(&m, SeverityError, fe.Field, fe.Message))
			}
			for _, fe := range warnSpec(spec) {
				diags = append(diags, DiagnosticFor(&m, SeverityWarning, fe.Field, fe.Message))
			}
		}
	}
	return Object{Meta: m, Spec: spec}, diags
}

// setMeta copies what Warden uses from Kubernetes metadata, keeping the identity
// (and the defaulted namespace) already in m.
func setMeta(m *Meta, om *metav1.ObjectMeta) {
	m.Labels = om.Labels
	m.Annotations = om.Annotations
	m.CreationTimestamp = om.CreationTimestamp.Time
	m.ResourceVersion = om.ResourceVersion
	m.UID = string(om.UID)
}

func unmarshalStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var jsonUnknownField = regexp.MustCompile(`unknown field "([^"]*)"`)

// jsonFieldError turns an encoding/json error into a field path under prefix and a message.
func jsonFieldError(prefix string, err error) (field, msg string) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return join(prefix, te.Field), "invalid value of type " + te.Value + " (want " + te.Type.String() + ")"
	}
	if m := jsonUnknownField.FindStringSubmatch(err.Error()); m != nil {
		return join(prefix, m[1]), "unknown field"
	}
	return prefix, err.Error()
}

func isNull(data json.RawMessage) bool {
	t := bytes.TrimSpace(data)
	return len(t) == 0 || string(t) == "null"
}
