package watch

import (
	"fmt"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// kubeSerializer decodes the Kubernetes kinds Warden accepts, strictly: unknown and
// duplicate fields are errors that name the field path.
var kubeSerializer = func() *kjson.Serializer {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, discoveryv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(fmt.Sprintf("watch: build scheme: %v", err))
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Strict: true})
}()

// decodeKube strictly decodes a Kubernetes object given as JSON.
func decodeKube(m Meta, data []byte) (Object, []Diagnostic) {
	obj, _, err := kubeSerializer.Decode(data, nil, nil)
	if err != nil {
		return Object{}, kubeErrors(&m, err)
	}
	om, err := meta.Accessor(obj)
	if err != nil {
		return Object{}, []Diagnostic{DiagnosticFor(&m, SeverityError, "metadata", err.Error())}
	}
	om.SetNamespace(m.Namespace) // defaulted like kubectl without -n
	m.Labels = om.GetLabels()
	m.Annotations = om.GetAnnotations()
	m.CreationTimestamp = om.GetCreationTimestamp().Time
	m.ResourceVersion = om.GetResourceVersion()
	m.UID = string(om.GetUID())
	if cm, ok := obj.(*corev1.ConfigMap); ok && isMeshConfigMap(&m) {
		if text, ok := cm.Data[meshDataKey]; ok {
			if _, fe := decodeMesh(text); fe != nil {
				return Object{}, []Diagnostic{DiagnosticFor(&m, SeverityError, fe.Field, fe.Message)}
			}
		}
		if _, fe := decodeMeshFlag(cm.Data, MultipleCustomAuthzProvidersKey); fe != nil {
			return Object{}, []Diagnostic{DiagnosticFor(&m, SeverityError, fe.Field, fe.Message)}
		}
	}
	return Object{Meta: m, Spec: obj}, nil
}

var (
	strictFieldError = regexp.MustCompile(`^(unknown|duplicate) field "([^"]*)"$`)
	typeFieldError   = regexp.MustCompile(`cannot unmarshal (\w+) into Go struct field [^.\s]+\.(\S+) of type (\S+)`)
)

// kubeErrors turns the serializer's errors into Diagnostics with field paths.
func kubeErrors(m *Meta, err error) []Diagnostic {
	if se, ok := runtime.AsStrictDecodingError(err); ok {
		var diags []Diagnostic
		for _, e := range se.Errors() {
			if sm := strictFieldError.FindStringSubmatch(e.Error()); sm != nil {
				diags = append(diags, DiagnosticFor(m, SeverityError, sm[2], sm[1]+" field"))
				continue
			}
			diags = append(diags, DiagnosticFor(m, SeverityError, "", e.Error()))
		}
		return diags
	}
	msg := err.Error()
	if tm := typeFieldError.FindStringSubmatch(msg); tm != nil {
		return []Diagnostic{DiagnosticFor(m, SeverityError, tm[2], "invalid value of type "+tm[1]+" (want "+tm[3]+")")}
	}
	return []Diagnostic{DiagnosticFor(m, SeverityError, "", strings.TrimPrefix(msg, "json: "))}
}
