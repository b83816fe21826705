//go:build cgo || !darwin

// Command lockstep-menu is Lockstep's menu-bar app (package ui). On macOS
// it needs cgo (Fyne and fyne.io/systray use AppKit), so it is built on a
// Mac; the build tag keeps `GOOS=darwin CGO_ENABLED=0 go build ./...` green.
package main

import (
	"os"

	"github.com/lockstep-dev/lockstep/ui"
)

func main() { os.Exit(ui.Main(os.Args[1:])) }
