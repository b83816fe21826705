# The menu-bar app (ui/, cmd/lockstep-menu).
#
#   make ui-test         the headless window tests (part of `make unit` too)
#   make ui-tray-test    the real app under Xvfb on a private D-Bus session,
#                        its tray menu read and clicked through dbusmenu (make test)
#   make ui-golden       rewrite the golden screenshots and translations/en.json
#   make menu            bin/lockstep-menu for this machine (cgo; X11/GL dev packages)
#   make menu-run        run it against SOCKET (default /var/run/lockstepd.sock)
.PHONY: ui-test ui-tray-test ui-golden menu menu-run

TEST_EXTRA += ui-tray-test

SOCKET ?= /var/run/lockstepd.sock

ui-test:
	$(GO) test $(RACE) -count=1 ./ui/...

# Behind a build tag so `go test ./...` does not build and run the GUI twice.
# Without Xvfb or dbus-daemon it skips, except with CI=true, where it fails.
ui-tray-test:
	$(GO) test -tags traytest -count=1 -timeout 5m -run TestTrayOverDBus ./cmd/lockstep-menu

ui-golden:
	LOCKSTEP_UPDATE_GOLDEN=1 $(GO) test -count=1 ./ui

menu:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/lockstep-menu

menu-run: menu
	$(BIN)/lockstep-menu --socket $(SOCKET)
