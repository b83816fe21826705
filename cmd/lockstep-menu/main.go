//go:build cgo || !darwin

// Command lockstep-menu is Lockstep's menu-bar app. It runs per user (a
// LaunchAgent on macOS, an autostart entry on a Linux desktop with a
// tray), talks only to lockstepd's local API on its unix socket and holds
// no state of its own.
//
// On macOS it needs cgo (Fyne and fyne.io/systray use AppKit), so it is
// built on a Mac; the build tag keeps `GOOS=darwin CGO_ENABLED=0 go build
// ./...` green.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui"
	"github.com/lockstep-dev/lockstep/ui/instance"
	"github.com/lockstep-dev/lockstep/version"
)

// appID names the app to the OS (notifications, preferences); it matches
// the LaunchAgent's label.
const appID = "dev.lockstep.menu"

func main() {
	socket := flag.String("socket", localapi.DefaultSocket, "lockstepd's local API socket")
	look := flag.String("theme", "system", "appearance: system, light or dark")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *socket, *look); err != nil {
		log.Error("lockstep-menu failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, socket, look string) error {
	release, err := instance.Lock(appID)
	if errors.Is(err, instance.ErrRunning) {
		log.Info("lockstep-menu is already running for this user", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	defer release()

	fa := app.NewWithID(appID)
	fa.SetIcon(ui.Icon())
	switch look {
	case "light":
		fa.Settings().SetTheme(ui.WithVariant(theme.DefaultTheme(), theme.VariantLight))
	case "dark":
		fa.Settings().SetTheme(ui.WithVariant(theme.DefaultTheme(), theme.VariantDark))
	case "system":
	default:
		return fmt.Errorf("--theme %q: want system, light or dark", look)
	}
	d, ok := fa.(desktop.App)
	if !ok {
		return errors.New("this desktop has no system tray")
	}
	u := ui.New(fa, localapi.NewClient(socket), ui.Options{
		Tray:         newTray(d),
		TemplateIcon: templateIcons,
		Log:          log,
	})
	u.Start() // Fyne wants the tray menu before Run
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go u.Run(ctx)
	log.Info("lockstep-menu started", "version", version.Version, "socket", socket)
	fa.Lifecycle().SetOnStopped(cancel)
	fa.Run()
	return nil
}
