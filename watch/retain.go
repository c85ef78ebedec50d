package watch

import "fmt"

// RetainLastGood decides, against the previous Input, what of this round's objects
// serves. prev may be nil (the first load: objects are taken as they are).
//
//   - An object rejected in this round (an error Diagnostic naming its kind,
//     namespace and name) that prev served keeps serving at prev's version.
//   - Per file: while a file has any error Diagnostic (a document that does not parse,
//     a cut-off kind, a rejected object) or is empty, every object prev served from that file and
//     that the file no longer yields keeps serving. So a file caught mid-write never
//     drops an object; it goes only when the file parses again without it, or when the
//     file is deleted.
//   - An established object keeps its file: when prev served kind/namespace/name from
//     file A and another file B now defines it too, A's version (current, or retained
//     by the rules above) serves and B's is rejected with an error naming both files,
//     whatever their order. Once A no longer defines it, B's version is taken.
//
// Retained objects are marked Retained and get a warning saying so.
func RetainLastGood(prev *Input, objs []Object, diags []Diagnostic) ([]Object, []Diagnostic) {
	if prev == nil {
		return objs, diags
	}
	rejected := make(map[objectKey]Diagnostic)
	broken := make(map[string]Diagnostic) // files with an error, by shown path
	for _, d := range diags {
		if d.Message == emptyFileMessage && d.Source.File != "" {
			broken[d.Source.File] = d
		}
		if !d.IsError() {
			continue
		}
		if d.Kind != "" && d.Name != "" {
			rejected[objectKey{d.Kind, d.Namespace, d.Name}] = d
		}
		if d.Source.File != "" {
			if _, seen := broken[d.Source.File]; !seen {
				broken[d.Source.File] = d
			}
		}
	}
	established := make(map[objectKey]Object, len(prev.objects))
	for _, o := range prev.objects {
		established[keyOf(&o.Meta)] = o
	}

	// Which prev objects serve at their last good version.
	inOwnFile := make(map[objectKey]bool, len(objs)) // still defined by its established file
	for _, o := range objs {
		k := keyOf(&o.Meta)
		if e, ok := established[k]; ok && e.Source.File == o.Source.File {
			inOwnFile[k] = true
		}
	}
	retained := make(map[objectKey]Diagnostic)
	for k, o := range established {
		if inOwnFile[k] {
			continue
		}
		if cause, ok := rejected[k]; ok {
			retained[k] = cause
		} else if cause, ok := broken[o.Source.File]; ok && o.Source.File != "" {
			retained[k] = cause
		}
	}

	// Newcomers that collide with an established object are rejected.
	out := make([]Object, 0, len(objs)+len(retained))
	for _, o := range objs {
		k := keyOf(&o.Meta)
		e, ok := established[k]
		_, keep := retained[k]
		if ok && e.Source.File != o.Source.File && (inOwnFile[k] || keep) {
			msg := fmt.Sprintf("already defined at %s; this definition is ignored", e.Source)
			diags = append(diags, DiagnosticFor(&o.Meta, SeverityError, "", msg))
			continue
		}
		out = append(out, o)
	}
	for _, o := range prev.objects {
		cause, ok := retained[keyOf(&o.Meta)]
		if !ok {
			continue
		}
		o.Retained = true
		out = append(out, o)
		msg := fmt.Sprintf("new version rejected (%s); serving the last good version", cause.Source)
		diags = append(diags, DiagnosticFor(&o.Meta, SeverityWarning, "", msg))
	}
	return out, diags
}
