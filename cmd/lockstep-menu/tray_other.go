//go:build !darwin

package main

import (
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/lockstep-dev/lockstep/ui"
)

// templateIcons: Linux trays show the icons in colour.
const templateIcons = false

func newTray(d desktop.App) ui.Tray { return d }
