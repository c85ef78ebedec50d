package kube

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/wardenmesh/warden/watch"
)

// ReasonInvalidConfig is the reason of the Warning Events Warden records on objects it
// rejects.
const ReasonInvalidConfig = "InvalidConfig"

// eventer records one Warning Event per rejected object version and message, so a bad
// object that stays bad is reported once, not on every rebuild.
type eventer struct {
	recorder record.EventRecorder
	sent     map[string]bool
}

// report records Events for the error diagnostics not reported yet. refs locates the
// objects; diagnostics about objects not in the caches are left to the logs.
func (e *eventer) report(diags []watch.Diagnostic, refs map[objectRef]corev1.ObjectReference) {
	if e.recorder == nil {
		return
	}
	now := map[string]bool{}
	for _, d := range diags {
		if !d.IsError() || d.Name == "" {
			continue
		}
		ref, ok := refs[objectRef{d.Kind, d.Namespace, d.Name}]
		if !ok {
			continue
		}
		msg := d.Message
		if d.Field != "" {
			msg = d.Field + ": " + msg
		}
		key := string(ref.UID) + "\x00" + ref.ResourceVersion + "\x00" + msg
		now[key] = true
		if !e.sent[key] {
			e.recorder.Event(&ref, corev1.EventTypeWarning, ReasonInvalidConfig, msg)
		}
	}
	e.sent = now
}
