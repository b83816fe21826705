//go:build cgo || !darwin

package ui

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
	"github.com/lockstep-dev/lockstep/ui/instance"
	"github.com/lockstep-dev/lockstep/ui/text"
	"github.com/lockstep-dev/lockstep/version"
)

// appID names the app to the OS (notifications, preferences); it matches
// the LaunchAgent's label.
const appID = "dev.lockstep.menu"

// Main runs the menu-bar app (cmd/lockstep-menu) with args (without the
// program name) until the user quits it, and returns its exit code. It
// runs per user (a LaunchAgent on macOS, an autostart entry on a Linux
// desktop with a tray), talks only to lockstepd's local API and holds no
// state of its own; a second instance for the same user exits at once.
func Main(args []string) int {
	text.Use(text.Settings{Languages: text.Preferred()})
	fs := flag.NewFlagSet("lockstep-menu", flag.ContinueOnError)
	socket := fs.String("socket", localapi.DefaultSocket, text.FlagSocket.S())
	look := fs.String("theme", "system", text.FlagTheme.S())
	showVersion := fs.Bool("version", false, text.FlagVersion.S())
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Println(version.Version)
		return 0
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := runMenu(log, *socket, *look); err != nil {
		log.Error("lockstep-menu failed", "err", err)
		return 1
	}
	return 0
}

func runMenu(log *slog.Logger, socket, look string) error {
	release, err := instance.Lock(appID)
	if errors.Is(err, instance.ErrRunning) {
		log.Info("lockstep-menu already running for this user", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	defer release()

	fa := app.NewWithID(appID)
	fa.SetIcon(Icon())
	switch look {
	case "light":
		fa.Settings().SetTheme(WithVariant(theme.DefaultTheme(), theme.VariantLight))
	case "dark":
		fa.Settings().SetTheme(WithVariant(theme.DefaultTheme(), theme.VariantDark))
	case "system":
	default:
		return fmt.Errorf("--theme %q: want system, light or dark", look)
	}
	d, ok := fa.(desktop.App)
	if !ok {
		return errors.New("this desktop has no system tray")
	}
	u := New(fa, localapi.NewClient(socket), Options{
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
