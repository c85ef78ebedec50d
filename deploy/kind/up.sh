#!/usr/bin/env bash
# up.sh creates a kind cluster running Warden and the chapter 9 sample, for users with
# kind (and the Docker or Podman it runs its nodes in), kubectl and Go. It cannot run on
# the project's CI machines (no container engine); the image it loads is built and
# inspected there (make image, hack/ociimage) and the manifests it applies are tested
# there against a real kube-apiserver (e2e/kube).
#
#   deploy/kind/up.sh            # cluster "warden"
#   KIND_CLUSTER=x deploy/kind/up.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
CLUSTER="${KIND_CLUSTER:-warden}"
IMAGE="${WARDEN_IMAGE:-wardend:dev}"
SAMPLE="${WARDEN_SAMPLE:-deploy/kind/sample}"

for c in kind kubectl go make; do
	command -v "$c" >/dev/null || { echo "up.sh needs $c" >&2; exit 1; }
done

if ! kind get clusters | grep -qx "$CLUSTER"; then
	kind create cluster --name "$CLUSTER" --wait 120s
fi
kubectl config use-context "kind-$CLUSTER"

# The image is built without Docker (hack/ociimage) and loaded from its archive.
make image WARDEN_IMAGE="$IMAGE"
kind load image-archive --name "$CLUSTER" bin/wardend-image.tar

# Namespaces, the Istio CRDs, RBAC and wardend, with server-side apply (the CRDs are
# too large for client-side apply's annotation).
kubectl apply --server-side -f deploy/00-namespaces.yaml -f deploy/10-istio-crds.yaml
kubectl wait --for condition=established --timeout=60s crd -l app=istio-pilot
kubectl apply --server-side -f deploy/20-rbac.yaml -f deploy/30-wardend.yaml -f deploy/40-injector.yaml
kubectl -n warden-system rollout status deployment/wardend --timeout=180s
# The injector's webhook refuses pods (failurePolicy Fail) until wardend has set its
# caBundle to the mesh root; wardend also publishes ConfigMap warden-ca-root (the root
# sidecars pin) in every namespace.
for _ in $(seq 60); do
	[[ -n "$(kubectl get mutatingwebhookconfiguration warden-sidecar-injector -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]] && break
	sleep 2
done

if [[ -d "$SAMPLE" ]]; then
	echo "== applying the sample in $SAMPLE"
	kubectl apply --server-side -R -f "$SAMPLE"
fi

echo "== Warden is up. Status: kubectl -n warden-system port-forward deploy/wardend 15014 & wardenctl status --server 127.0.0.1:15014"
