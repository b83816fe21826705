//go:build darwin && cgo

package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/systray"
)

// templateIcons: the macOS menu bar wants single-colour template images,
// which it tints for light and dark menu bars and for highlighting.
const templateIcons = true

// templateTray sets the tray icon as a template image. Fyne marks an icon
// as a template only for SVG theme resources, and our icons are PNGs, so
// this goes to fyne.io/systray (the tray Fyne itself drives) directly.
type templateTray struct {
	desktop.App
	last fyne.Resource
}

func newTray(d desktop.App) Tray {
	t := &templateTray{App: d}
	if fa, ok := d.(fyne.App); ok {
		// Fyne sets its stored icon, as a plain image, when the tray
		// starts; put the template back once the app runs.
		fa.Lifecycle().SetOnStarted(func() {
			if t.last != nil {
				t.SetSystemTrayIcon(t.last)
			}
		})
	}
	return t
}

func (t *templateTray) SetSystemTrayIcon(icon fyne.Resource) {
	t.last = icon
	t.App.SetSystemTrayIcon(icon)
	systray.SetTemplateIcon(icon.Content(), icon.Content())
}
