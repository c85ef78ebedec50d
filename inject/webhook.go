package inject

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxReview bounds an AdmissionReview body (the API server's own limit is 3 MiB for
// an object; a Pod is far smaller).
const maxReview = 4 << 20

// NamespaceLabels returns the labels of a namespace (wardend asks its API server).
type NamespaceLabels func(ctx context.Context, ns string) (map[string]string, error)

// Handler is the mutating admission webhook: it answers AdmissionReview v1 requests for
// Pod CREATE with the injection patch and its warnings. A pod it cannot inject whole, or
// whose namespace it cannot look up, is refused, never admitted half-injected; with
// failurePolicy Fail the API server also refuses pods while the webhook is unreachable.
type Handler struct {
	Config     Config
	Namespaces NamespaceLabels
	Log        *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReview+1))
	if err != nil || len(body) > maxReview {
		http.Error(w, "AdmissionReview unreadable or larger than 4 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview with a request", http.StatusBadRequest)
		return
	}
	resp := h.review(r.Context(), review.Request)
	resp.UID = review.Request.UID
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	if out.APIVersion == "" {
		out.APIVersion, out.Kind = "admission.k8s.io/v1", "AdmissionReview"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func deny(format string, args ...any) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Message: "warden sidecar injection: " + fmt.Sprintf(format, args...)}}
}

func (h *Handler) review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return deny("pod %s/%s: %v", req.Namespace, req.Name, err)
	}
	ns := req.Namespace
	if ns == "" {
		ns = pod.Namespace
	}
	name := pod.Name
	if name == "" {
		name = pod.GenerateName + "*"
	}
	nsLabels, err := h.Namespaces(ctx, ns)
	if err != nil {
		return deny("pod %s/%s: namespace %s: %v", ns, name, ns, err)
	}
	res, err := Pod(h.Config, ns, nsLabels, &pod)
	if err != nil {
		return deny("pod %s/%s: %v", ns, name, err)
	}
	log := h.Log.With("pod", ns+"/"+name)
	if !res.Injected {
		log.Debug("not injected", "reason", res.Reason)
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	patch, err := Patch(&pod, res.Pod)
	if err != nil {
		return deny("pod %s/%s: %v", ns, name, err)
	}
	for _, w := range res.Warnings {
		log.Warn("injection annotation", "warning", w)
	}
	log.Info("injected")
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &pt, Warnings: res.Warnings}
}
