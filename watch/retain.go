package watch

import "fmt"

// RetainLastGood keeps objects from serving stale absence: for every object rejected
// in this round (an error Diagnostic naming its kind, namespace and name), and for
// every object of a file or document that could not be parsed at all, it adds the
// version prev accepted, if any and if no good version is present now. Added objects
// are marked Retained and get a warning saying so. prev may be nil.
func RetainLastGood(prev *Input, objs []Object, diags []Diagnostic) ([]Object, []Diagnostic) {
	if prev == nil {
		return objs, diags
	}
	present := make(map[objectKey]bool, len(objs))
	for _, o := range objs {
		present[keyOf(&o.Meta)] = true
	}
	rejected := make(map[objectKey]Diagnostic)
	broken := make(map[string]Diagnostic) // files with unidentifiable errors
	for _, d := range diags {
		switch {
		case !d.IsError():
		case d.Kind != "" && d.Name != "":
			rejected[objectKey{d.Kind, d.Namespace, d.Name}] = d
		case d.Source.File != "":
			broken[d.Source.File] = d
		}
	}
	for _, o := range prev.objects {
		k := keyOf(&o.Meta)
		if present[k] {
			continue
		}
		cause, ok := rejected[k]
		if !ok {
			cause, ok = broken[o.Source.File]
		}
		if !ok {
			continue
		}
		o.Retained = true
		objs = append(objs, o)
		present[k] = true
		msg := fmt.Sprintf("new version rejected (%s); serving the last good version", cause.Source)
		diags = append(diags, DiagnosticFor(&o.Meta, SeverityWarning, "", msg))
	}
	return objs, diags
}
