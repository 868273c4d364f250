# gpu-autoscaler: the two commands in README.md are `make demo` and `make test`.
# Every target installs what it needs through hack/install-deps.sh first.

JOBS ?= $(shell nproc)
export CCACHE_DIR ?= $(HOME)/.cache/ccache
export CCACHE_MAXSIZE ?= 5G
# Hash paths relative to the checkout so that another clone reuses the cache.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= true

.PHONY: help deps build build-asan test test-default test-asan fuzz format format-check demo bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

deps: ## Install the Debian packages the build needs (idempotent)
	@hack/install-deps.sh

build: deps ## Configure and build the default (RelWithDebInfo) preset
	cmake --preset default >/dev/null
	cmake --build --preset default -j $(JOBS)

build-asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)

test: deps format-check test-default test-asan ## Build and run every test (default and ASan+UBSan; fuzz seeds replayed in both)
	@echo "make test: all suites passed"

test-default: build
	ctest --preset default

test-asan: build-asan
	ctest --preset asan

fuzz: deps ## Build the libFuzzer targets with clang and fuzz each for 60 s
	hack/fuzz.sh --time 60

format: ## Reformat every C++ file with clang-format
	@git ls-files '*.cc' '*.h' | xargs -r clang-format -i

format-check: deps ## Fail if any C++ file is not clang-formatted
	@hack/format-check.sh

demo: build ## A short real run of what exists
	hack/demo.sh

bench: build ## Run the benchmarks (see docs/benchmarks.md)
	hack/bench.sh

clean:
	rm -rf build
