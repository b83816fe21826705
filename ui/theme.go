//go:build cgo || !darwin

package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
)

// WithVariant returns th with its light or dark variant forced, whatever
// the system's appearance. The app follows the system by default; this is
// for screenshots and for the --theme flag.
func WithVariant(th fyne.Theme, v fyne.ThemeVariant) fyne.Theme {
	return variantTheme{Theme: th, v: v}
}

type variantTheme struct {
	fyne.Theme
	v fyne.ThemeVariant
}

func (t variantTheme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	return t.Theme.Color(n, t.v)
}
