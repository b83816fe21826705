# Platform layer (platform/), macOS simulator (macsim/, cmd/macsim) and the
# darwin cgo type-check (internal/tools/darwincheck).
.PHONY: darwin-check platform-cross platform-fuzz

## darwin-check: type-check every package of the module for darwin/arm64 with cgo (go/types FakeImportC; no Apple SDK)
darwin-check:
	$(GO) run ./internal/tools/darwincheck ./...

## platform-cross: the platform layer and the simulator build and vet for macOS without cgo
platform-cross:
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./platform/... ./macsim/... ./cmd/macsim
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) vet ./platform/... ./macsim/... ./cmd/macsim

# Every tool-output parser has a fuzz target. Budgets are execution counts,
# not durations: a duration -fuzztime can fail spuriously with "context
# deadline exceeded" at the boundary on Go 1.26 (golang/go#75804).
PLATFORM_FUZZ := FuzzDsclRecord FuzzDsclStatus FuzzSysadminctl FuzzFdesetup FuzzCryptoUsers FuzzPreboot FuzzSecurityError FuzzConsoleUser
PLATFORM_FUZZ_EXECS ?= 200000x

## platform-fuzz: a short run of every platform parser fuzz target
platform-fuzz:
	@set -e; for f in $(PLATFORM_FUZZ); do \
	  echo "go test ./platform -fuzz $$f -fuzztime $(PLATFORM_FUZZ_EXECS)"; \
	  $(GO) test ./platform -run '^$$' -fuzz "^$$f$$" -fuzztime $(PLATFORM_FUZZ_EXECS); \
	done

TEST_EXTRA += darwin-check platform-cross
FUZZ_EXTRA += platform-fuzz
