//go:build !darwin

package ui

import (
	"fyne.io/fyne/v2/driver/desktop"
)

// templateIcons: Linux trays show the icons in colour.
const templateIcons = false

func newTray(d desktop.App) Tray { return d }
