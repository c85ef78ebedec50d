package watch

import (
	"cmp"
	"strconv"
	"strings"
)

// Diagnostic severities.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// String reads like `dir/a.yaml#2 PeerAuthentication istio-system/default:
// spec.mtls.mode: invalid value "STRICTT" (want UNSET, DISABLE, PERMISSIVE, STRICT)`.
// Warnings carry a "warning: " prefix before the message.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.Source.String())
	if d.Kind != "" || d.Name != "" {
		b.WriteString(" ")
		b.WriteString(ref(d.Kind, d.Namespace, d.Name))
	}
	b.WriteString(": ")
	if d.Field != "" {
		b.WriteString(d.Field)
		b.WriteString(": ")
	}
	if d.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Error makes a Diagnostic usable as an error.
func (d Diagnostic) Error() string { return d.String() }

// IsError reports whether the Diagnostic rejected its object.
func (d Diagnostic) IsError() bool { return d.Severity == SeverityError }

func ref(kind, namespace, name string) string {
	switch {
	case kind == "":
		return namespace + "/" + name
	case name == "":
		return kind
	case namespace == "":
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

func itoa(i int) string { return strconv.Itoa(i) }

// DiagnosticFor is the one constructor of a Diagnostic about an object (decoding,
// retention, duplicates, translation): it names the object m describes, where it was
// read, and the field.
func DiagnosticFor(m *Meta, severity, field, msg string) Diagnostic {
	return Diagnostic{
		Severity:  severity,
		Source:    m.Source,
		Kind:      m.Kind,
		Namespace: m.Namespace,
		Name:      m.Name,
		Field:     field,
		Message:   msg,
	}
}

// LocationDiagnostic is a Diagnostic about a file or a document whose object cannot
// be named (unreadable, not YAML, too large).
func LocationDiagnostic(loc Location, severity, msg string) Diagnostic {
	return DiagnosticFor(&Meta{Source: loc}, severity, "", msg)
}

func compareDiagnostics(a, b Diagnostic) int {
	return cmp.Or(
		cmp.Compare(a.Source.File, b.Source.File),
		cmp.Compare(a.Source.Doc, b.Source.Doc),
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Field, b.Field),
		cmp.Compare(a.Message, b.Message),
		cmp.Compare(a.Severity, b.Severity),
	)
}
