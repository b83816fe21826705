//go:build linux && traytest

// The tray end to end: the real lockstep-menu binary (Fyne, GLFW, cgo)
// under Xvfb, on a private D-Bus session where this test plays the
// desktop's StatusNotifierWatcher, reading the menu the way a panel does,
// through com.canonical.dbusmenu, and clicking it. lockstepd is the fake
// real lockstepd over a fake Mac and directory (agent/agenttest).
//
// It needs Xvfb and dbus-daemon (Debian: xvfb dbus) and builds the app
// with cgo (libgl1-mesa-dev xorg-dev libxkbcommon-dev). Run it with
// `go test -tags traytest ./cmd/lockstep-menu` or `make ui-tray-test`.
// Without those programs it skips, except under CI=true, where it fails.

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/internal/tools/testtool"

	"github.com/godbus/dbus/v5"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/ui/text"
)

const (
	watcherName = "org.kde.StatusNotifierWatcher"
	itemIface   = "org.kde.StatusNotifierItem"
	menuIface   = "com.canonical.dbusmenu"
	password    = "Old-password-2026"
)

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs cmd and stops it (SIGKILL to its pid) when the test ends.
func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
}

// watcher is the desktop side of the StatusNotifierItem protocol.
type watcher struct{ items chan string }

func (w *watcher) RegisterStatusNotifierItem(sender dbus.Sender, path string) *dbus.Error {
	w.items <- string(sender)
	return nil
}

func (w *watcher) RegisterStatusNotifierHost(string) *dbus.Error { return nil }

type layout struct {
	ID       int32
	Props    map[string]dbus.Variant
	Children []dbus.Variant
}

type menuItem struct {
	id      int32
	label   string
	enabled bool
}

// readMenu reads the tray menu through dbusmenu's GetLayout.
func readMenu(t *testing.T, menu dbus.BusObject) []menuItem {
	t.Helper()
	var rev uint32
	var root layout
	if err := menu.Call(menuIface+".GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root); err != nil {
		t.Fatalf("GetLayout: %v", err)
	}
	var items []menuItem
	for _, c := range root.Children {
		var l layout
		if err := dbus.Store([]any{c.Value()}, &l); err != nil {
			t.Fatalf("menu item: %v", err)
		}
		if v, ok := l.Props["visible"]; ok && !v.Value().(bool) {
			continue
		}
		it := menuItem{id: l.ID, enabled: true}
		if v, ok := l.Props["type"]; ok && v.Value() == "separator" {
			it.label = "-"
		} else if v, ok := l.Props["label"]; ok {
			it.label = v.Value().(string)
		}
		if v, ok := l.Props["enabled"]; ok {
			it.enabled = v.Value().(bool)
		}
		items = append(items, it)
	}
	return items
}

func labels(items []menuItem) []string {
	var out []string
	for _, it := range items {
		l := it.label
		if !it.enabled && l != "-" {
			l += " (disabled)"
		}
		out = append(out, l)
	}
	return out
}

// eventually polls fn until it returns "" (success); it fails the test
// with fn's last answer otherwise. Polling is only how the test waits for
// another process; no duration is asserted.
func eventually(t *testing.T, what string, fn func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		msg := fn()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %s", what, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTrayOverDBus(t *testing.T) {
	xvfb := testtool.Need(t, "Xvfb", "xvfb")
	dbusDaemon := testtool.Need(t, "dbus-daemon", "dbus")
	dir := t.TempDir()

	bin := filepath.Join(dir, "lockstep-menu")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building lockstep-menu: %v\n%s", err, out)
	}

	// A private session bus.
	bus := exec.Command(dbusDaemon, "--session", "--nofork", "--print-address=1")
	busOut, err := bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start(t, bus)
	addr, err := bufio.NewReader(busOut).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the bus address: %v", err)
	}
	addr = strings.TrimSpace(addr)

	// Play the desktop's watcher.
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connecting to the private bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	w := &watcher{items: make(chan string, 4)}
	if err := conn.Export(w, "/StatusNotifierWatcher", watcherName); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(watcherName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("claiming %s: %v %v", watcherName, reply, err)
	}

	// A display: Xvfb picks a free one and tells us which.
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	x := exec.Command(xvfb, "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	x.ExtraFiles = []*os.File{wr}
	start(t, x)
	wr.Close()
	display, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		t.Fatalf("reading Xvfb's display: %v", err)
	}
	display = ":" + strings.TrimSpace(display)

	// lockstepd.
	world := agenttest.Start(t, agenttest.Options{Password: password, FileVault: true})
	sock := world.Socket

	// The app.
	var stderr syncBuffer
	app := exec.Command(bin, "--socket", sock)
	app.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"DISPLAY=" + display,
		"DBUS_SESSION_BUS_ADDRESS=" + addr,
		"LANG=C.UTF-8",
		"LIBGL_ALWAYS_SOFTWARE=1",
	}
	app.Stdout = &stderr
	app.Stderr = &stderr
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = app.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = app.Process.Kill()
			<-exited
		}
	})
	defer func() {
		if t.Failed() {
			t.Logf("lockstep-menu output:\n%s", stderr.String())
		}
	}()

	var item string
	select {
	case item = <-w.items:
	case <-exited:
		t.Fatalf("lockstep-menu exited before registering its tray icon: %v", waitErr)
	case <-time.After(60 * time.Second):
		t.Fatal("lockstep-menu did not register a tray icon")
	}
	obj := conn.Object(item, "/StatusNotifierItem")
	v, err := obj.GetProperty(itemIface + ".Menu")
	if err != nil {
		t.Fatalf("reading the item's Menu: %v", err)
	}
	menu := conn.Object(item, v.Value().(dbus.ObjectPath))
	icon := func() string {
		v, err := obj.GetProperty(itemIface + ".IconPixmap")
		if err != nil {
			t.Fatalf("reading the icon: %v", err)
		}
		return fmt.Sprint(v.Value())
	}

	tail := []string{"-", text.TrayAbout.S(), "-", text.TrayQuit.S()}
	inSync := append([]string{text.LineInSync.S() + " (disabled)", "-", text.TrayChange.S(), text.TrayStatus.S()}, tail...)
	eventually(t, "the in-sync menu", func() string {
		if got := labels(readMenu(t, menu)); !slices.Equal(got, inSync) {
			return fmt.Sprintf("menu %q, want %q", got, inSync)
		}
		return ""
	})
	inSyncIcon := icon()

	// An administrator resets the password: the menu offers a sync.
	world.Reset("Reset-by-IT-2026", false)
	syncNeeded := append([]string{
		text.LineSyncNeeded.S(map[string]any{"Reason": text.ShortReset.S()}) + " (disabled)", "-",
		text.TraySync.S(), text.TrayChange.S() + " (disabled)", text.TrayStatus.S(),
	}, tail...)
	var items []menuItem
	eventually(t, "the sync-needed menu", func() string {
		items = readMenu(t, menu)
		if got := labels(items); !slices.Equal(got, syncNeeded) {
			return fmt.Sprintf("menu %q, want %q", got, syncNeeded)
		}
		return ""
	})
	if icon() == inSyncIcon {
		t.Error("the tray icon did not change for sync needed")
	}

	click := func(label string) {
		t.Helper()
		for _, it := range items {
			if it.label == label {
				if err := menu.Call(menuIface+".Event", 0, it.id, "clicked", dbus.MakeVariant(""), uint32(0)).Err; err != nil {
					t.Fatalf("clicking %q: %v", label, err)
				}
				return
			}
		}
		t.Fatalf("no item %q", label)
	}
	click(text.TraySync.S())
	eventually(t, "the Sync window", func() string {
		if !strings.Contains(stderr.String(), "window=sync") {
			return "no window=sync in the app's log"
		}
		return ""
	})
	click(text.TrayStatus.S())
	eventually(t, "the Status window", func() string {
		if !strings.Contains(stderr.String(), "window=status") {
			return "no window=status in the app's log"
		}
		return ""
	})

	// Quit from the menu ends the process cleanly.
	click(text.TrayQuit.S())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("lockstep-menu exited with %v after Quit", waitErr)
		}
	case <-ctx.Done():
		t.Error("lockstep-menu still running after Quit")
	}
}
