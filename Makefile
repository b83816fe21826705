# Lockstep. `make test` is what CI runs; `make demo` runs the whole system.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/lockstep-dev/lockstep/version.Version=$(VERSION)
BIN     := bin
export LANG ?= C.UTF-8
# RACE is the race detector's flag for every test run; `make test RACE=` runs
# without it (CI's second, unprivileged pass: the root pass already races).
RACE    ?= -race
# TESTFLAGS go to every test run (CI's unprivileged pass gives -short: the
# web console's flows then run on SQLite only).
TESTFLAGS ?=

# The cgo-free binaries that run on a Mac; they must cross-build from Linux.
DARWIN_CMDS := $(wildcard cmd/lockstepd cmd/lockstep cmd/lockstep-directory)

.PHONY: all build test vet unit cross fuzz-smoke clean demo demo-script

# Each area adds its own targets in mk/<area>.mk and appends the checks that
# belong in `make test` to TEST_EXTRA and fuzz targets to FUZZ_EXTRA.
TEST_EXTRA :=
FUZZ_EXTRA :=
-include mk/*.mk

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## test: vet, unit and integration tests with the race detector, darwin cross-builds
test: vet unit cross $(TEST_EXTRA)

vet:
	$(GO) vet ./...

unit:
	$(GO) test $(RACE) $(TESTFLAGS) -count=1 -timeout 25m ./...

cross:
	@set -e; for arch in arm64 amd64; do \
	  echo "GOOS=darwin GOARCH=$$arch CGO_ENABLED=0 go build $(DARWIN_CMDS)"; \
	  $(if $(DARWIN_CMDS),GOOS=darwin GOARCH=$$arch CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/darwin-$$arch/ $(addprefix ./,$(DARWIN_CMDS));) \
	  GOOS=darwin GOARCH=$$arch CGO_ENABLED=0 $(GO) vet ./protocol/... ./localapi/...; \
	done

## demo: the whole system on this machine (Ctrl-C stops it); demo-script: its scripted walk-through
DEMO_PORT ?= 8443
demo:
	$(GO) run ./internal/tools/demo -port $(DEMO_PORT)

demo-script:
	$(GO) run ./internal/tools/demo -script -port $(DEMO_PORT) -dir .demo-script

## fuzz-smoke: a short run of every fuzz target (not part of make test)
fuzz-smoke: $(FUZZ_EXTRA)
	$(GO) test ./protocol -run '^$$' -fuzz FuzzDecode -fuzztime 30s

clean:
	rm -rf $(BIN) dist .demo .demo-script
