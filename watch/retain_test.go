package watch

import (
	"testing"

	security "istio.io/api/security/v1beta1"
)

const strictPolicy = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`

func TestRetainLastGoodKeepsRejectedObject(t *testing.T) {
	objs, diags := DecodeFile("pa.yaml", []byte(strictPolicy))
	prev := Build(objs, diags)

	objs, diags = DecodeFile("pa.yaml", []byte(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICTT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: new, namespace: ns}
spec: {mtls: {mode: DISABLEE}}
`))
	objs, diags = RetainLastGood(prev, objs, diags)
	in := Build(objs, diags)

	if len(in.PeerAuthentications) != 1 || in.PeerAuthentications[0].Spec.GetMtls().GetMode() != security.PeerAuthentication_MutualTLS_STRICT {
		t.Fatalf("peer authentications = %v, want the last good STRICT policy", in.PeerAuthentications)
	}
	if len(in.Stale) != 1 || in.Stale[0].Ref() != "PeerAuthentication istio-system/default" {
		t.Errorf("stale = %v", in.Stale)
	}
	if len(in.Rejected) != 1 || in.Rejected[0].Ref() != "PeerAuthentication ns/new" {
		t.Errorf("rejected = %v, want only the policy that never was good", in.Rejected)
	}
	if errs := errorsOf(in.Diagnostics); len(errs) != 2 {
		t.Errorf("errors = %v, want both rejections reported", errs)
	}
}

func TestRetainLastGoodKeepsObjectsOfUnparsableFile(t *testing.T) {
	objs, diags := DecodeFile("pa.yaml", []byte(strictPolicy))
	prev := Build(objs, diags)

	objs, diags = DecodeFile("pa.yaml", []byte("spec: {mtls: [\n"))
	objs, diags = RetainLastGood(prev, objs, diags)
	in := Build(objs, diags)
	if len(in.PeerAuthentications) != 1 || in.Version != prev.Version {
		t.Errorf("peer authentications = %v, version %s (was %s)", in.PeerAuthentications, in.Version, prev.Version)
	}

	// A file deleted on purpose gives no diagnostic: its objects go.
	objs, diags = RetainLastGood(prev, nil, nil)
	if len(Build(objs, diags).PeerAuthentications) != 0 {
		t.Error("deleted policy retained")
	}
}
