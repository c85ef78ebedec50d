# Warden's build entry points. CI runs `make test` (see .ci/run) and nothing else.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO          ?= go
SCENARIOS   ?= e2e/scenarios
MODE        ?= dir
TEST_TIMEOUT ?= 20m
LOAD_PROXIES ?= 1000
# make bench-kube / bench-istiod: the mesh's size, the protocol (DELTA=1: incremental
# xDS) and where heap profiles and logs go.
PROXIES     ?= 1000
NAMESPACES  ?= 100
POLICIES    ?= 5000
DELTA       ?=
BENCH_OUT   ?= $(BIN)/bench-kube
BENCH_KUBE  = $(GO) run ./e2e/cmd/benchkube -wardend $(BIN)/wardend -proxies $(PROXIES) -namespaces $(NAMESPACES) \
	-policies $(POLICIES) -out $(BENCH_OUT)$(if $(filter 1,$(DELTA)), -delta)
FUZZ_TIME   ?= 30s
FUZZ_MINIMIZE ?= 20x
VENV        := $(CURDIR)/.venv
BIN         := $(CURDIR)/bin
# The image `make image` builds and deploy/kind/up.sh loads (the manifests say wardend:dev).
WARDEN_IMAGE ?= wardend:dev

# The e2e Go tests start real pods and stock Envoy: they need root and these.
WARDEN_ENVOY ?= $(VENV)/bin/envoy
WARDEN_BIN   ?= $(BIN)
export WARDEN_ENVOY WARDEN_BIN

# The scenario runner: every *.yaml directly in $(SCENARIOS), against real wardend,
# stock Envoy and network-namespace pods.
# INJECT=1 runs every sidecar pod from its injected Pod spec (inject.Pod) with the
# emulator's kubelet (e2e/harness/kubelet.go) instead of starting Envoy directly.
INJECT      ?=
E2E_CMD ?= $(BIN)/warden-e2e-runner -mode $(MODE) -scenarios $(SCENARIOS)$(if $(filter 1,$(INJECT)), -inject)
# The scenarios make test also runs with injected pods, in both modes (a subset: the
# chapter 9 mTLS/PeerAuthentication scenario).
INJECT_RUN  ?= mtls-ch9

# timed runs a command and prints its wall time as `== <label>: <n>s`.
define timed
	start=$$(date +%s); $(2); echo "== $(1): $$(( $$(date +%s) - start ))s"
endef

.PHONY: help deps deps-demo build image test gen-check e2e bench bench-kube bench-istiod lint demo up down fuzz

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## Install stock Envoy (.venv), iptables, iproute2, etcd-server, curl, ca-certificates, containerd and the kube-apiserver, only when missing
	@bash hack/deps.sh

deps-demo: ## Only what make demo needs: stock Envoy and the Debian packages (no kube-apiserver, no containerd)
	@WARDEN_DEPS=demo bash hack/deps.sh

# wardend and wardenctl are built static and -trimpath, as in the image (hack/ociimage's
# BuildFlags), so the image's build reuses these compiled packages and only links.
build: ## Build wardend, wardenctl and the e2e test app into bin/
	@$(call timed,build,mkdir -p $(BIN) && CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/... && $(GO) build -o $(BIN)/warden-e2e-app ./e2e/app && $(GO) build -o $(BIN)/warden-e2e-runner ./e2e/cmd/runner)

image: ## Build the wardend image without Docker (iptables from the host: make deps) into bin/wardend-image.tar (WARDEN_IMAGE=name:tag, default wardend:dev) and print its digest
	@$(call timed,image,$(GO) run ./hack/ociimage -tag $(WARDEN_IMAGE) -out $(BIN)/wardend-image.tar)

test: deps build ## go vet, all Go tests (unit and e2e; needs root), then the scenarios in both modes, and the mTLS one with injected pods
	@$(call timed,go vet,$(GO) vet ./...)
	@$(call timed,gen-check,$(MAKE) --no-print-directory gen-check)
	@$(call timed,go test,$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...)
	@$(call timed,e2e scenarios (dir),$(subst -mode $(MODE),-mode dir,$(E2E_CMD)))
	@$(call timed,e2e scenarios (kube),$(subst -mode $(MODE),-mode kube,$(E2E_CMD)))
	@$(call timed,e2e injected pods (dir),$(BIN)/warden-e2e-runner -mode dir -scenarios e2e/scenarios -run $(INJECT_RUN) -inject)
	@$(call timed,e2e injected pods (kube),$(BIN)/warden-e2e-runner -mode kube -scenarios e2e/scenarios -run $(INJECT_RUN) -inject)

# GOLDEN_PKGS are the packages whose tests compare with golden files (internal/golden).
GOLDEN_PKGS = $$($(GO) list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... | \
	awk '$$1 != "github.com/wardenmesh/warden/internal/golden" && / github.com\/wardenmesh\/warden\/internal\/golden( |$$)/ {print $$1}')

gen-check: ## Regenerate every golden file (-update, orphans pruned) in a temporary copy; fail if any testdata differs
	@root=$$(mktemp -d); trap 'rm -rf "$$root"' EXIT; tmp="$$root/warden"; mkdir "$$tmp"; \
	if [[ -d ../shared ]]; then ln -s "$$(cd ../shared && pwd)" "$$root/shared"; fi; \
	git ls-files -z --cached --others --exclude-standard -- ':!:.venv' ':!:.cache' ':!:bin' | \
		tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$$tmp"; \
	pkgs=$(GOLDEN_PKGS); \
	(cd "$$tmp" && $(GO) test -count=1 $$pkgs -update >/dev/null) || { echo "gen-check: go test -update failed in $$tmp:"; (cd "$$tmp" && $(GO) test -count=1 $$pkgs -update 2>&1 | tail -40); exit 1; }; \
	status=0; for d in $$(cd "$$tmp" && find . -path ./.git -prune -o -type d -name testdata -print); do \
		diff -r "$$d" "$$tmp/$$d" || status=1; \
	done; \
	if [[ $$status -ne 0 ]]; then echo "gen-check: golden files are stale; run go test -update in: $$(echo $$pkgs)"; exit 1; fi; \
	echo "gen-check: golden files up to date ($$(echo $$pkgs | wc -w) packages)"

e2e: deps build ## Run the end-to-end scenarios (SCENARIOS=folder, default e2e/scenarios; MODE=dir|kube; INJECT=1: pods from their injected spec)
	@$(E2E_CMD)

bench: deps build ## Go benchmarks (translation, certs, RBAC p50/p99 through stock Envoy: e2e/bench) and the 1,000-sidecar xDS load harness
	@$(call timed,go benchmarks,$(GO) test -run '^$$' -bench . -benchmem ./...)
	@$(call timed,xds load harness,$(GO) run ./e2e/cmd/load -wardend $(BIN)/wardend -proxies $(LOAD_PROXIES))

bench-kube: deps build ## wardend in Kubernetes mode against a real kube-apiserver: PROXIES sidecars (default 1000) over TLS ADS, NAMESPACES, POLICIES, DELTA=1; figures table, heap profile in BENCH_OUT
	@$(call timed,bench-kube,$(BENCH_KUBE))

# istiod's pilot-discovery is built once from the Go module proxy (hack/istiod.sh, cached
# under .cache/istiod; many minutes the first time).
bench-istiod: deps build ## bench-kube with istiod side by side (same API server, mesh and fleet; plaintext xDS): both columns and istiod/warden ratios
	@$(call timed,bench-istiod,istiod=$$(bash hack/istiod.sh) && $(BENCH_KUBE) -istiod "$$istiod")

lint: ## gofmt (must list nothing) and go vet
	@files=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.venv/*')); \
	if [[ -n "$$files" ]]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi
	@$(GO) vet ./...

DEMO_PID := $(CURDIR)/.cache/demo.pid
DEMO_LOG := $(CURDIR)/.cache/demo.log

demo: deps-demo build ## Run the chapter 9 mTLS scenario and print what each step got (KEEP=1: leave the mesh up, as make up)
ifeq ($(KEEP),1)
	@$(MAKE) --no-print-directory up
else
	@$(BIN)/warden-e2e-runner -scenarios e2e/scenarios -run mtls-ch9 -table
endif

up: deps-demo build ## Run the chapter 9 scenario and keep its mesh up in the background; print the commands to try against it
	@mkdir -p $(dir $(DEMO_PID)); \
	if [[ -f "$(DEMO_PID)" ]] && kill -0 "$$(cat "$(DEMO_PID)")" 2>/dev/null; then echo "a demo mesh is already up (pid $$(cat "$(DEMO_PID)")); make down first"; exit 1; fi; \
	setsid $(BIN)/warden-e2e-runner -scenarios e2e/scenarios -run mtls-ch9 -table -keep -pidfile "$(DEMO_PID)" >"$(DEMO_LOG)" 2>&1 </dev/null & \
	for _ in $$(seq 600); do \
		if grep -q '^== mesh kept up' "$(DEMO_LOG)" 2>/dev/null; then cat "$(DEMO_LOG)"; exit 0; fi; \
		if ! kill -0 $$! 2>/dev/null; then cat "$(DEMO_LOG)"; echo "make up: the demo runner exited"; exit 1; fi; \
		sleep 0.5; \
	done; cat "$(DEMO_LOG)"; echo "make up: the mesh did not come up in 300s"; exit 1

down: ## Remove the mesh that make up (or make demo KEEP=1) left running
	@if [[ ! -f "$(DEMO_PID)" ]]; then echo "no demo mesh is up"; exit 0; fi; \
	pid=$$(cat "$(DEMO_PID)"); kill -TERM "$$pid" 2>/dev/null || true; \
	for _ in $$(seq 120); do kill -0 "$$pid" 2>/dev/null || { rm -f "$(DEMO_PID)"; echo "demo mesh removed"; exit 0; }; sleep 0.5; done; \
	echo "make down: pid $$pid still runs after 60s"; exit 1

# FUZZ_TARGETS are package:FuzzName pairs; `make fuzz` runs each for FUZZ_TIME, one after
# another. Their seed corpora (f.Add and testdata/fuzz) already run in `go test ./...`.
# Minimizing a new input is capped at FUZZ_MINIMIZE runs (Go's default is 60s): random
# signing nonces and map iteration make coverage not reproduce exactly, so minimization
# would spend its whole budget on nearly every new input.
FUZZ_TARGETS := certs:FuzzTokenVerify certs:FuzzTokenSignVerify xds:FuzzCheckNode xds:FuzzNodeMetadata \
	xds:FuzzBearerToken watch:FuzzDecodeFile translate:FuzzTranslate

fuzz: ## Run each fuzz target for FUZZ_TIME (default 30s) in turn, e.g. make fuzz FUZZ_TIME=2m
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		$(call timed,$$name,$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZ_TIME) -fuzzminimizetime $(FUZZ_MINIMIZE) ./$$pkg); \
	done
