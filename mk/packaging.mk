# Packaging for IT: the macOS installer package, built on any OS in pure Go
# (cmd/lockstep-pkg), plus the Mac-only app bundle, signing and notarizing.
#
#   make pkg        dist/Lockstep-$(VERSION).pkg and dist/Lockstep-Uninstall-$(VERSION).pkg
#   make pkg-check  build a package from fresh darwin binaries and check it with
#                   the project's reader, bsdtar and 7zz (part of make test)
#   make app        dist/Lockstep.app, universal (on a Mac only: Fyne needs cgo)
#   make sign       codesign the binaries and the app, rebuild, productsign (Mac)
#   make notarize   notarytool submit --wait, then stapler staple (Mac)
#
# Signing takes the NAMES of things in the login keychain, never secrets:
#   LOCKSTEP_CODESIGN_IDENTITY   "Developer ID Application: Org (TEAMID)"
#   LOCKSTEP_INSTALLER_IDENTITY  "Developer ID Installer: Org (TEAMID)"
#   LOCKSTEP_NOTARY_PROFILE      profile saved by `xcrun notarytool store-credentials`
#   LOCKSTEP_KEYCHAIN            optional keychain path for codesign/productsign

.PHONY: pkg pkg-binaries pkg-check app sign notarize

# Fragments are included before the Makefile's own `all`; without this the
# first target of the first fragment would become what a bare `make` runs.
.DEFAULT_GOAL := all

TEST_EXTRA += pkg-check

# Every entry in the package is stamped with the commit time of the version
# being packaged, so a rebuild of the same commit gives the same bytes.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

PKG_DIST      := dist
PKG_BUILD     := $(PKG_DIST)/build
PKG_TOOL      := $(PKG_BUILD)/lockstep-pkg
PKG_FILE      := $(PKG_DIST)/Lockstep-$(VERSION).pkg
PKG_UNINSTALL := $(PKG_DIST)/Lockstep-Uninstall-$(VERSION).pkg
PKG_APP       := $(PKG_DIST)/Lockstep.app
PKG_ARCHES    := arm64 amd64
# lockstepd and lockstep are built without cgo so the package can be made
# on Linux; on a Mac, PKG_CGO=1 builds them with cgo (keychain code).
PKG_CGO       ?= 0
PKG_GOFLAGS   := -trimpath
APP_ICON      ?= packaging/assets/Lockstep.icns
IS_MAC        := $(filter Darwin,$(shell uname -s))

# The tool itself runs on the build host.
$(PKG_TOOL): FORCE_PKG_TOOL
	@mkdir -p $(PKG_BUILD)
	$(GO) build -o $@ ./cmd/lockstep-pkg
.PHONY: FORCE_PKG_TOOL
FORCE_PKG_TOOL:

PKG_DAEMON_SRC ?= ./cmd/lockstepd
PKG_CLI_SRC    ?= ./cmd/lockstep

## pkg-binaries: thin darwin lockstepd and lockstep, then universal ones
pkg-binaries: $(PKG_TOOL)
	@test -d $(PKG_DAEMON_SRC) -a -d $(PKG_CLI_SRC) || { echo "pkg: $(PKG_DAEMON_SRC) and $(PKG_CLI_SRC) must exist" >&2; exit 1; }
	@set -e; for arch in $(PKG_ARCHES); do \
	  echo "GOOS=darwin GOARCH=$$arch CGO_ENABLED=$(PKG_CGO) go build $(PKG_DAEMON_SRC) $(PKG_CLI_SRC)"; \
	  GOOS=darwin GOARCH=$$arch CGO_ENABLED=$(PKG_CGO) $(GO) build $(PKG_GOFLAGS) -ldflags '$(LDFLAGS)' \
	    -o $(PKG_BUILD)/darwin-$$arch/lockstepd $(PKG_DAEMON_SRC); \
	  GOOS=darwin GOARCH=$$arch CGO_ENABLED=$(PKG_CGO) $(GO) build $(PKG_GOFLAGS) -ldflags '$(LDFLAGS)' \
	    -o $(PKG_BUILD)/darwin-$$arch/lockstep $(PKG_CLI_SRC); \
	done
	@mkdir -p $(PKG_BUILD)/universal
	$(PKG_TOOL) lipo -o $(PKG_BUILD)/universal/lockstepd $(foreach a,$(PKG_ARCHES),$(PKG_BUILD)/darwin-$(a)/lockstepd)
	$(PKG_TOOL) lipo -o $(PKG_BUILD)/universal/lockstep $(foreach a,$(PKG_ARCHES),$(PKG_BUILD)/darwin-$(a)/lockstep)

## pkg: the installer and uninstaller packages (with dist/Lockstep.app when it was built on a Mac)
pkg: pkg-binaries
	$(PKG_TOOL) build --version '$(VERSION)' --mtime $(SOURCE_DATE_EPOCH) \
	  --daemon $(PKG_BUILD)/universal/lockstepd --cli $(PKG_BUILD)/universal/lockstep \
	  $(if $(wildcard $(PKG_APP)/Contents/Info.plist),--app $(PKG_APP)) \
	  --out $(PKG_FILE) --uninstall-out $(PKG_UNINSTALL)
	@$(if $(wildcard $(PKG_APP)/Contents/Info.plist),,echo "pkg: no $(PKG_APP) (build it on a Mac with make app); the package has no menu-bar app")
	$(PKG_TOOL) inspect -q $(PKG_FILE)
	$(PKG_TOOL) inspect -q $(PKG_UNINSTALL)

# pkg-check uses the real commands when they exist, the test program otherwise.
PKG_CHECK     := $(PKG_BUILD)/check
PKG_CHECK_SRC ?= $(if $(wildcard cmd/lockstepd/*.go),./cmd/lockstepd,./packaging/testdata/hello) \
                 $(if $(wildcard cmd/lockstep/*.go),./cmd/lockstep,./packaging/testdata/hello)

## pkg-check: build a package from fresh darwin binaries; check it with the project's reader, bsdtar and 7zz
pkg-check: $(PKG_TOOL)
	@command -v bsdtar >/dev/null || { echo "pkg-check: bsdtar missing (Debian: libarchive-tools)" >&2; exit 1; }
	@command -v 7zz >/dev/null || { echo "pkg-check: 7zz missing (Debian: 7zip)" >&2; exit 1; }
	@rm -rf $(PKG_CHECK) && mkdir -p $(PKG_CHECK)
	@set -e; for arch in $(PKG_ARCHES); do \
	  set -- $(PKG_CHECK_SRC); \
	  echo "pkg-check: GOOS=darwin GOARCH=$$arch CGO_ENABLED=0 go build $$1 $$2"; \
	  GOOS=darwin GOARCH=$$arch CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(PKG_CHECK)/lockstepd-$$arch $$1; \
	  GOOS=darwin GOARCH=$$arch CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(PKG_CHECK)/lockstep-$$arch $$2; \
	done
	@set -e; cd $(PKG_CHECK); \
	tool=$(CURDIR)/$(PKG_TOOL); \
	build() { $$tool build --version 0.0.0-check --mtime 1700000000 \
	  --daemon lockstepd-arm64 --daemon lockstepd-amd64 --cli lockstep-arm64 --cli lockstep-amd64 \
	  --out "$$1" --uninstall-out Uninstall.pkg >/dev/null; }; \
	build Lockstep.pkg; build Again.pkg; \
	cmp Lockstep.pkg Again.pkg || { echo "pkg-check: two builds differ" >&2; exit 1; }; \
	$$tool inspect -q Lockstep.pkg; $$tool inspect -q Uninstall.pkg; \
	for p in Lockstep.pkg Uninstall.pkg; do \
	  bsdtar -tvf $$p >/dev/null; \
	  rm -rf x && mkdir x && bsdtar -xf $$p -C x; \
	  out=$$(7zz t $$p) || { echo "$$out" >&2; exit 1; }; \
	  case "$$out" in *WARNING*|*ERROR*) echo "$$out" >&2; exit 1;; esac; \
	done; \
	bsdtar -xOf Lockstep.pkg Lockstep.pkg/Payload >Payload; \
	bsdtar -tvf Payload --numeric-owner >payload.txt; \
	grep -q '^-rwxr-xr-x  1 0 *0 .*Library/Application Support/Lockstep/lockstepd$$' payload.txt || { cat payload.txt >&2; echo "pkg-check: lockstepd not in the Payload as root:wheel 0755" >&2; exit 1; }; \
	grep -q '^-rw-r--r--  1 0 *0 .*Library/LaunchDaemons/dev.lockstep.agent.plist$$' payload.txt || { cat payload.txt >&2; exit 1; }; \
	size=$$(wc -c <Lockstep.pkg); cp Lockstep.pkg Bad.pkg; \
	printf '\377' | dd of=Bad.pkg bs=1 seek=$$((size / 2)) conv=notrunc 2>/dev/null; \
	cmp -s Lockstep.pkg Bad.pkg && { echo "pkg-check: corruption did not change the file" >&2; exit 1; }; \
	if $$tool inspect -q Bad.pkg 2>/dev/null; then echo "pkg-check: lockstep-pkg inspect accepted a corrupt package" >&2; exit 1; fi; \
	if rm -rf x && mkdir x && bsdtar -xf Bad.pkg -C x 2>/dev/null; then echo "pkg-check: bsdtar accepted a corrupt package" >&2; exit 1; fi; \
	if 7zz t Bad.pkg >/dev/null 2>&1; then echo "pkg-check: 7zz accepted a corrupt package" >&2; exit 1; fi; \
	echo "pkg-check: OK ($$size bytes; reproducible; read by lockstep-pkg, bsdtar and 7zz; corruption detected by all three)"

## app: dist/Lockstep.app, universal, from ./cmd/lockstep-menu (on a Mac)
app: $(PKG_TOOL)
	@test -n "$(IS_MAC)" || { echo "app: Lockstep.app needs cgo and the macOS SDK (Fyne); run make app on a Mac, then make pkg anywhere with dist/Lockstep.app in place" >&2; exit 1; }
	@set -e; for arch in $(PKG_ARCHES); do \
	  echo "GOOS=darwin GOARCH=$$arch CGO_ENABLED=1 go build ./cmd/lockstep-menu"; \
	  GOOS=darwin GOARCH=$$arch CGO_ENABLED=1 $(GO) build $(PKG_GOFLAGS) -ldflags '$(LDFLAGS)' \
	    -o $(PKG_BUILD)/app-$$arch/Lockstep ./cmd/lockstep-menu; \
	done
	rm -rf $(PKG_APP)
	mkdir -p $(PKG_APP)/Contents/MacOS $(PKG_APP)/Contents/Resources
	$(PKG_TOOL) lipo -o $(PKG_APP)/Contents/MacOS/Lockstep $(foreach a,$(PKG_ARCHES),$(PKG_BUILD)/app-$(a)/Lockstep)
	$(if $(wildcard $(APP_ICON)),cp $(APP_ICON) $(PKG_APP)/Contents/Resources/Lockstep.icns)
	$(PKG_TOOL) plist info --version '$(VERSION)' $(if $(wildcard $(APP_ICON)),--icon) -o $(PKG_APP)/Contents/Info.plist
	printf 'APPL????' >$(PKG_APP)/Contents/PkgInfo
	@echo "app: $(PKG_APP) ($(if $(wildcard $(APP_ICON)),with,without) icon)"

# Signing and notarizing need Apple's tools.
.PHONY: pkg-need-mac
pkg-need-mac:
	@test -n "$(IS_MAC)" || { echo "$(MAKECMDGOALS): needs macOS (codesign, productsign, xcrun notarytool/stapler); build with make pkg on Linux, then sign and notarize on a Mac" >&2; exit 1; }
PKG_KEYCHAIN_ARG = $${LOCKSTEP_KEYCHAIN:+--keychain "$$LOCKSTEP_KEYCHAIN"}

## sign: codesign (hardened runtime, timestamp) the binaries and the app, rebuild the packages, productsign them
sign: pkg-need-mac pkg-binaries
	@test -n "$$LOCKSTEP_CODESIGN_IDENTITY" || { echo "sign: set LOCKSTEP_CODESIGN_IDENTITY to the name of a Developer ID Application identity" >&2; exit 1; }
	@test -n "$$LOCKSTEP_INSTALLER_IDENTITY" || { echo "sign: set LOCKSTEP_INSTALLER_IDENTITY to the name of a Developer ID Installer identity" >&2; exit 1; }
	codesign --force --options runtime --timestamp $(PKG_KEYCHAIN_ARG) --sign "$$LOCKSTEP_CODESIGN_IDENTITY" \
	  --identifier dev.lockstep.agent $(PKG_BUILD)/universal/lockstepd
	codesign --force --options runtime --timestamp $(PKG_KEYCHAIN_ARG) --sign "$$LOCKSTEP_CODESIGN_IDENTITY" \
	  --identifier dev.lockstep.cli $(PKG_BUILD)/universal/lockstep
	$(if $(wildcard $(PKG_APP)/Contents/Info.plist),codesign --force --options runtime --timestamp $(PKG_KEYCHAIN_ARG) --sign "$$LOCKSTEP_CODESIGN_IDENTITY" $(PKG_APP))
	$(if $(wildcard $(PKG_APP)/Contents/Info.plist),codesign --verify --strict --verbose=2 $(PKG_APP))
	codesign --verify --strict --verbose=2 $(PKG_BUILD)/universal/lockstepd $(PKG_BUILD)/universal/lockstep
	$(PKG_TOOL) build --version '$(VERSION)' --mtime $(SOURCE_DATE_EPOCH) \
	  --daemon $(PKG_BUILD)/universal/lockstepd --cli $(PKG_BUILD)/universal/lockstep \
	  $(if $(wildcard $(PKG_APP)/Contents/Info.plist),--app $(PKG_APP)) \
	  --out $(PKG_BUILD)/unsigned.pkg --uninstall-out $(PKG_BUILD)/unsigned-uninstall.pkg
	productsign $(PKG_KEYCHAIN_ARG) --timestamp --sign "$$LOCKSTEP_INSTALLER_IDENTITY" $(PKG_BUILD)/unsigned.pkg $(PKG_FILE)
	productsign $(PKG_KEYCHAIN_ARG) --timestamp --sign "$$LOCKSTEP_INSTALLER_IDENTITY" $(PKG_BUILD)/unsigned-uninstall.pkg $(PKG_UNINSTALL)
	pkgutil --check-signature $(PKG_FILE)
	pkgutil --check-signature $(PKG_UNINSTALL)

## notarize: submit the signed packages to Apple's notary service, wait, staple the tickets
notarize: pkg-need-mac
	@test -n "$$LOCKSTEP_NOTARY_PROFILE" || { echo "notarize: set LOCKSTEP_NOTARY_PROFILE to a profile saved with xcrun notarytool store-credentials" >&2; exit 1; }
	@test -f $(PKG_FILE) -a -f $(PKG_UNINSTALL) || { echo "notarize: run make sign first" >&2; exit 1; }
	xcrun notarytool submit $(PKG_FILE) --keychain-profile "$$LOCKSTEP_NOTARY_PROFILE" --wait
	xcrun notarytool submit $(PKG_UNINSTALL) --keychain-profile "$$LOCKSTEP_NOTARY_PROFILE" --wait
	xcrun stapler staple $(PKG_FILE)
	xcrun stapler staple $(PKG_UNINSTALL)
	xcrun stapler validate $(PKG_FILE)

## fuzz-packaging: the package readers (Bom, xar, cpio) on arbitrary input
.PHONY: fuzz-packaging
FUZZ_EXTRA += fuzz-packaging
fuzz-packaging:
	$(GO) test ./packaging/bom -run '^$$' -fuzz FuzzRead -fuzztime 20s
	$(GO) test ./packaging/xar -run '^$$' -fuzz FuzzOpen -fuzztime 20s
	$(GO) test ./packaging/cpio -run '^$$' -fuzz FuzzReader -fuzztime 20s
