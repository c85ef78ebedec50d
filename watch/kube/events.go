package kube

import (
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/wardenmesh/warden/watch"
)

// Reasons of the Warning Events Warden records on the objects its diagnostics name:
// InvalidConfig for errors (the object, or its version, is rejected), ConfigWarning for
// warnings (accepted, but something in it is ignored or surprising).
const (
	ReasonInvalidConfig = "InvalidConfig"
	ReasonConfigWarning = "ConfigWarning"
)

// eventer records one Warning Event per object version and diagnostic, from decoding
// (the Input's) and from translation (reported by the server), so a bad object that
// stays bad is reported once, not on every rebuild or push.
type eventer struct {
	mu       sync.Mutex
	recorder record.EventRecorder
	sent     map[string]bool
	input    []watch.Diagnostic // the current Input's
	reported []watch.Diagnostic // the server's (translation included)
	refs     map[objectRef]corev1.ObjectReference
}

// setInput records the Input's diagnostics and where its objects are.
func (e *eventer) setInput(diags []watch.Diagnostic, refs map[objectRef]corev1.ObjectReference) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.input, e.refs = diags, refs
	e.reportLocked()
}

// setReported records the diagnostics the server reports.
func (e *eventer) setReported(diags []watch.Diagnostic) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reported = diags
	e.reportLocked()
}

// reportLocked records Events for the diagnostics not reported yet. refs locates the
// objects; diagnostics about objects not in the caches are left to the logs.
func (e *eventer) reportLocked() {
	if e.recorder == nil {
		return
	}
	now := map[string]bool{}
	for _, d := range append(slices.Clip(e.input), e.reported...) {
		if d.Name == "" {
			continue
		}
		ref, ok := e.refs[objectRef{d.Kind, d.Namespace, d.Name}]
		if !ok {
			continue
		}
		msg := d.Message
		if d.Field != "" {
			msg = d.Field + ": " + msg
		}
		reason := ReasonConfigWarning
		if d.IsError() {
			reason = ReasonInvalidConfig
		}
		key := string(ref.UID) + "\x00" + ref.ResourceVersion + "\x00" + reason + "\x00" + msg
		if now[key] {
			continue
		}
		now[key] = true
		if !e.sent[key] {
			e.recorder.Event(&ref, corev1.EventTypeWarning, reason, msg)
		}
	}
	e.sent = now
}
