package inject

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// post sends one AdmissionReview to the webhook over HTTPS, as the API server does.
func post(t *testing.T, srv *httptest.Server, op admissionv1.Operation, ns string, pod *corev1.Pod) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	in := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: types.UID("uid-1"), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Operation: op, Namespace: ns, Object: runtime.RawExtension{Raw: raw}},
	}
	body, _ := json.Marshal(in)
	res, err := srv.Client().Post(srv.URL+"/inject", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", res.Status, data)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &out); err != nil || out.Response == nil {
		t.Fatalf("response %s: %v", data, err)
	}
	if out.Response.UID != "uid-1" || out.Kind != "AdmissionReview" {
		t.Errorf("response uid %q kind %q", out.Response.UID, out.Kind)
	}
	return out.Response
}

func TestWebhook(t *testing.T) {
	nsLabels := map[string]map[string]string{"shop": enabled, "plain": {}}
	h := &Handler{Config: DefaultConfig(), Log: slog.New(slog.DiscardHandler),
		Namespaces: func(_ context.Context, ns string) (map[string]string, error) {
			if l, ok := nsLabels[ns]; ok {
				return l, nil
			}
			return nil, errors.New("not found")
		}}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()

	t.Run("injected with warnings", func(t *testing.T) {
		pod := appPod(annotate("traffic.sidecar.istio.io/excludeInboundPorts", "x"))
		pod.Namespace = "" // a Deployment's pod: the namespace is the request's
		resp := post(t, srv, admissionv1.Create, "shop", pod)
		if !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("response %+v", resp)
		}
		want, err := Pod(DefaultConfig(), "shop", enabled, pod)
		if err != nil {
			t.Fatal(err)
		}
		checkPatchApplies(t, pod, want.Pod, resp.Patch)
		if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "traffic.sidecar.istio.io/excludeInboundPorts") {
			t.Errorf("warnings %q", resp.Warnings)
		}
	})
	t.Run("namespace not enabled", func(t *testing.T) {
		if resp := post(t, srv, admissionv1.Create, "plain", appPod(nil)); !resp.Allowed || resp.Patch != nil {
			t.Errorf("response %+v", resp)
		}
	})
	t.Run("opted out", func(t *testing.T) {
		if resp := post(t, srv, admissionv1.Create, "shop", appPod(annotate("sidecar.istio.io/inject", "false"))); !resp.Allowed || resp.Patch != nil {
			t.Errorf("response %+v", resp)
		}
	})
	t.Run("update is not injected", func(t *testing.T) {
		if resp := post(t, srv, admissionv1.Update, "shop", appPod(nil)); !resp.Allowed || resp.Patch != nil {
			t.Errorf("response %+v", resp)
		}
	})
	// Fail closed: a pod that cannot be injected whole, or whose namespace cannot be
	// read, is refused with a message naming it.
	t.Run("name clash refused", func(t *testing.T) {
		resp := post(t, srv, admissionv1.Create, "shop", appPod(func(p *corev1.Pod) { p.Spec.Containers[1].Name = "envoy" }))
		if resp.Allowed || resp.Patch != nil || !strings.Contains(resp.Result.Message, `container "envoy"`) {
			t.Errorf("response %+v", resp)
		}
	})
	t.Run("namespace unknown refused", func(t *testing.T) {
		resp := post(t, srv, admissionv1.Create, "gone", appPod(nil))
		if resp.Allowed || !strings.Contains(resp.Result.Message, "namespace gone") {
			t.Errorf("response %+v", resp)
		}
	})
}
