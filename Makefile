# Slipway — the two promises: `make demo` runs the main job on embedded
# defaults; `make test` runs every test. Both install what they need.

GO        ?= go
# Every build — the binary, the demo, the tests, the image and make tools —
# uses the Go that go.mod names (fetched from the module proxy in seconds
# when the machine's own Go is older).
export GOTOOLCHAIN := go$(shell sed -n 's/^go \([0-9.]*\)$$/\1/p' go.mod)
BIN       ?= bin/slipway
# The demo's launcher: the test rig (integration/) driving the product binary.
DEMO_BIN  ?= bin/slipway-demo
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The same flags build the binary here, in CI and in the Dockerfile.
GOFLAGS_BUILD = -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
# Per-machine cache of pinned external tools, shared by every checkout.
TOOLS_DIR ?= $(HOME)/.cache/slipway/tools

.PHONY: all build demo test test-short tools bench fuzz vet clean screenshots image schemas faults

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/slipway

# Slipway's own image (Dockerfile), built with the pinned Kaniko executor —
# no Docker engine — from this build and make tools' Trivy: pushed to
# IMAGE_REGISTRY (host:port, plain HTTP) when set, else written to
# bin/slipway-image.tar. As root, like the build sandbox it uses.
image: tools build
	$(GO) build -o bin/slipway-image ./integration/cmd/slipway-image
	bin/slipway-image --slipway $(BIN) --version $(VERSION) $(if $(IMAGE_REGISTRY),--registry $(IMAGE_REGISTRY))

demo: tools build
	$(GO) build -o $(DEMO_BIN) ./cmd/slipway-demo
	$(DEMO_BIN) --slipway $(BIN) $(DEMO_FLAGS)

# The tests and the hygiene checks side by side: the tests spend most of
# their time waiting on real systems, vet on the processor — at the lowest
# priority, so that it takes the processor time the tests leave.
test: tools
	@vetlog=$$(mktemp); nice -n 19 $(MAKE) --no-print-directory vet > $$vetlog 2>&1 & vet=$$!; \
	$(GO) test -race -count=1 -timeout 45m ./...; tests=$$?; \
	wait $$vet; vetted=$$?; echo "== make vet"; cat $$vetlog; rm -f $$vetlog; \
	[ $$tests -eq 0 ] && [ $$vetted -eq 0 ]

test-short:
	$(GO) test -short ./...

# Hygiene: go vet (with the test-only build tag too), gofmt, the pinned
# staticcheck and govulncheck (scripts/lint.env; make tools builds them),
# and the shipped binary built by go.mod's Go.
# The import-direction test (depcheck_test.go) runs with the tests.
vet:
	$(GO) vet ./...
	$(GO) vet -tags slipway_fake ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	. scripts/lint.env && $(TOOLS_DIR)/staticcheck-$$STATICCHECK_VERSION/staticcheck -tags slipway_fake ./...
	. scripts/lint.env && $(TOOLS_DIR)/staticcheck-$$STATICCHECK_VERSION/staticcheck ./cmd/slipway # the shipped build of the one package with tagged files
	TOOLS_DIR=$(TOOLS_DIR) bash scripts/vulncheck.sh
	@# The binary it ships is built by the pinned Go (the stdlib fixes are in
	@# it); built aside, as the tests may be running bin/slipway meanwhile.
	@dir=$$(mktemp -d); $(MAKE) --no-print-directory build BIN=$$dir/slipway >/dev/null && \
	got=$$($(GO) version $$dir/slipway | awk '{print $$2}'); rm -rf $$dir; \
	[ "$$got" = "$(GOTOOLCHAIN)" ] || { echo "the shipped binary was built by $$got, not $(GOTOOLCHAIN) (go.mod)" >&2; exit 1; }; echo "the shipped binary: built by $$got"

# The fault suite (the integration tests named TestFault…) alone, and the
# table of docs/faults.md written from what it measured.
faults: tools
	@report=$$(mktemp); \
	SLIPWAY_FAULT_REPORT=$$report $(GO) test -count=1 -timeout 30m -run '^TestFault' -skip TestFaultTableNamesEveryCase ./integration && \
	SLIPWAY_FAULT_REPORT=$$report $(GO) test -count=1 -run TestWriteFaultTable ./internal/faultreport; status=$$?; rm -f $$report; exit $$status

tools:
	@TOOLS_DIR=$(TOOLS_DIR) bash scripts/tools.sh

bench:
	bash bench/run.sh

# The README's screenshots of the UI, taken by the browser test from a real
# release: docs/screenshots/release.png and rollback.png (committed, PNG).
screenshots: tools
	SLIPWAY_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run TestBrowserPromoteAbortAndExplain ./integration

# The JSON Schemas of the pipeline file and the engine config
# (docs/schema/), written from the Go model; a test fails when they differ.
schemas:
	$(GO) test -count=1 -run TestSchemasAreCurrent ./internal/schemagen -update

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./pipeline

clean:
	rm -rf bin .slipway
