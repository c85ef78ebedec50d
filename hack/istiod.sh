#!/usr/bin/env bash
# Builds istiod's pilot-discovery once from the Go module proxy into .cache/istiod/bin
# (make bench-istiod's comparison column). The build runs in its own module folder so
# Warden's go.mod never sees Istio's dependencies. ISTIO_VERSION picks the module version.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ver=${ISTIO_VERSION:-v0.0.0-20260827124520-eed52ebb66ad}
dir="$root/.cache/istiod"
out="$dir/bin/pilot-discovery-$ver"
if [[ -x "$out" ]]; then echo "$out"; exit 0; fi
mkdir -p "$dir/mod" "$dir/bin"
cd "$dir/mod"
if [[ ! -f go.mod ]]; then
	cat >go.mod <<MOD
module wardenbench/istiod

go 1.25
MOD
fi
export GOFLAGS=-mod=mod CGO_ENABLED=0
go get "istio.io/istio@$ver" >&2
go build -trimpath -o "$out.tmp" istio.io/istio/pilot/cmd/pilot-discovery >&2
mv "$out.tmp" "$out"
echo "$out"
