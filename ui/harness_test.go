//go:build cgo || !darwin

package ui

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

var update = flag.Bool("update", os.Getenv("LOCKSTEP_UPDATE_GOLDEN") != "", "rewrite golden images")

// t0 is the tests' "now": 10:42 on a Tuesday, in UTC.
var t0 = time.Date(2026, 3, 10, 10, 42, 0, 0, time.UTC)

const password = "Old-password-2026"

// harness runs the app against a real lockstepd (agenttest's world: the
// daemon, its engine and its local API on a unix socket, over fakes of the
// Mac and the directory), through the real client. Everything the app would
// do on Fyne's goroutine is queued and run on the test's goroutine by
// waitFor, so the test and the app never race.
type harness struct {
	t     *testing.T
	fa    fyne.App
	world *agenttest.World
	// client is another program on the same Mac (the CLI, say): the test
	// uses it to act on lockstepd beside the app.
	client *localapi.Client
	// svc is the app's own client.
	svc  *watchCounter
	app  *App
	q    chan func()
	tray *fakeTray

	mu    sync.Mutex
	notes []*fyne.Notification
}

type fakeTray struct {
	h    *harness
	menu *fyne.Menu
	icon fyne.Resource
	sets int
}

func (f *fakeTray) SetSystemTrayMenu(m *fyne.Menu) {
	f.menu = m
	f.sets++
	if pseudoRun {
		f.h.checkMenu(m)
	}
}

func (f *fakeTray) SetSystemTrayIcon(r fyne.Resource) { f.icon = r }

// labels lists the menu's item labels, "-" for separators and a trailing
// " (disabled)" for disabled items.
func (f *fakeTray) labels() []string {
	var out []string
	for _, it := range f.menu.Items {
		switch {
		case it.IsSeparator:
			out = append(out, "-")
		case it.Disabled:
			out = append(out, it.Label+" (disabled)")
		default:
			out = append(out, it.Label)
		}
	}
	return out
}

func (f *fakeTray) item(label string) *fyne.MenuItem {
	for _, it := range f.menu.Items {
		if it.Label == label {
			return it
		}
	}
	return nil
}

// recApp records notifications.
type recApp struct {
	fyne.App
	h *harness
}

func (r recApp) SendNotification(n *fyne.Notification) {
	if pseudoRun {
		r.h.checkNotification(n)
	}
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	r.h.notes = append(r.h.notes, n)
}

type setup struct {
	world   agenttest.Options
	noStart bool
	log     io.Writer // where the app logs (default: nowhere)
	// languages are the app's (default English).
	languages []string
}

func newHarness(t *testing.T, s setup) *harness {
	t.Helper()
	fa := test.NewTempApp(t)
	test.ApplyTheme(t, WithVariant(theme.DefaultTheme(), theme.VariantLight))
	o := s.world
	if o.Password == "" {
		o.Password = password
	}
	o.Now = func() time.Time { return t0 }
	w := agenttest.Start(t, o)
	h := &harness{t: t, fa: fa, world: w, client: localapi.NewClient(w.Socket), q: make(chan func(), 4096), tray: &fakeTray{}}
	h.tray.h = h
	langs := s.languages
	if langs == nil {
		langs = []string{"en"}
	}
	if pseudoRun {
		langs = []string{text.Pseudo}
	}
	// The catalogue renders for the whole process: put English back for
	// the next test.
	t.Cleanup(useCatalogue)
	h.svc = &watchCounter{Client: localapi.NewClient(w.Socket)}
	h.app = New(recApp{App: fa, h: h}, h.svc, Options{
		Tray:      h.tray,
		Do:        func(fn func()) { h.q <- fn },
		Now:       func() time.Time { return t0 },
		Location:  time.UTC,
		RetryMin:  5 * time.Millisecond,
		RetryMax:  20 * time.Millisecond,
		Quit:      func() {},
		Languages: langs,
		Log:       slog.New(slog.NewTextHandler(logTo(s.log), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	h.app.Start()
	if !s.noStart {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); h.app.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		h.waitFor("the first status", func() bool { return h.app.connected })
	}
	return h
}

// waitFor runs the app's queued UI work until cond holds. The deadline
// only keeps a broken test from hanging; nothing here measures time.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	if !h.tryWait(cond) {
		h.t.Fatalf("timed out waiting for %s", what)
	}
}

// tryWait is waitFor that reports a timeout instead of failing, for a test
// that then says what it saw.
func (h *harness) tryWait(cond func() bool) bool {
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case fn := <-h.q:
			fn()
		case <-deadline:
			return false
		}
	}
	return true
}

// drain runs UI work already queued.
func (h *harness) drain() {
	for {
		select {
		case fn := <-h.q:
			fn()
		default:
			return
		}
	}
}

func (h *harness) notifications() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, n := range h.notes {
		out = append(out, n.Title+" | "+n.Content)
	}
	return out
}

// account is the account as lockstepd reports it now.
func (h *harness) account() localapi.Account {
	st, err := h.client.Status(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return st.Accounts[0]
}

// Golden images. A capture matches its golden file when no channel of any
// pixel differs by more than goldenChannelTolerance, except in at most
// goldenPixelTolerance of the pixels (anti-aliasing can differ slightly
// between CPUs and Go versions; a changed word or a moved box cannot hide
// in that). Run with -update or LOCKSTEP_UPDATE_GOLDEN=1 to rewrite them;
// a mismatch writes the capture to testdata/failed/.
const (
	goldenChannelTolerance = 24
	goldenPixelTolerance   = 0.002
)

func assertGolden(t *testing.T, name string, img image.Image) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		writePNG(t, path, img)
		return
	}
	want, err := readPNG(path)
	if err != nil {
		writePNG(t, filepath.Join("testdata", "failed", name), img)
		t.Errorf("golden %s: %v (capture written to testdata/failed/%s; run with -update to accept)", name, err, name)
		return
	}
	if msg := compareImages(want, img); msg != "" {
		writePNG(t, filepath.Join("testdata", "failed", name), img)
		t.Errorf("golden %s: %s (capture written to testdata/failed/%s; run with -update to accept)", name, msg, name)
	}
}

func compareImages(want, got image.Image) string {
	wb, gb := want.Bounds(), got.Bounds()
	if wb.Size() != gb.Size() {
		return fmt.Sprintf("size %v, want %v", gb.Size(), wb.Size())
	}
	bad := 0
	for y := 0; y < wb.Dy(); y++ {
		for x := 0; x < wb.Dx(); x++ {
			r1, g1, b1, a1 := want.At(wb.Min.X+x, wb.Min.Y+y).RGBA()
			r2, g2, b2, a2 := got.At(gb.Min.X+x, gb.Min.Y+y).RGBA()
			for _, d := range [4][2]uint32{{r1, r2}, {g1, g2}, {b1, b2}, {a1, a2}} {
				if diff := int(d[0]>>8) - int(d[1]>>8); diff > goldenChannelTolerance || diff < -goldenChannelTolerance {
					bad++
					break
				}
			}
		}
	}
	if limit := int(float64(wb.Dx()*wb.Dy()) * goldenPixelTolerance); bad > limit {
		return fmt.Sprintf("%d pixels differ (at most %d may)", bad, limit)
	}
	return ""
}

func readPNG(path string) (image.Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return png.Decode(bytes.NewReader(b))
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// shot compares w with its golden images, NAME-light.png and NAME-dark.png.
func (h *harness) shot(name string, w fyne.Window) {
	h.t.Helper()
	if pseudoRun {
		h.checkPseudo(name, w)
		return
	}
	for _, v := range []struct {
		name    string
		variant fyne.ThemeVariant
	}{{"light", theme.VariantLight}, {"dark", theme.VariantDark}} {
		test.ApplyTheme(h.t, WithVariant(theme.DefaultTheme(), v.variant))
		h.app.themeChanged()
		assertGolden(h.t, name+"-"+v.name+".png", w.Canvas().Capture())
	}
	test.ApplyTheme(h.t, WithVariant(theme.DefaultTheme(), theme.VariantLight))
	h.app.themeChanged()
}

// typeIn focuses e and types s, as a user does.
func typeIn(w fyne.Window, e fyne.Focusable, s string) {
	w.Canvas().Focus(e)
	for _, r := range s {
		w.Canvas().Focused().TypedRune(r)
	}
}

// press sends a key the way the driver does: to the focused widget, else
// to the window.
func press(w fyne.Window, key fyne.KeyName) {
	ev := &fyne.KeyEvent{Name: key}
	if f := w.Canvas().Focused(); f != nil {
		f.TypedKey(ev)
		return
	}
	if fn := w.Canvas().OnTypedKey(); fn != nil {
		fn(ev)
	}
}

// visibleMsg is a message's text when it is shown, else "".
func visibleMsg(m *message) string {
	if !m.box.Visible() {
		return ""
	}
	return m.text.Text
}

func stepTexts(l *stepList) []string { return lines(l) }

func texts(o fyne.CanvasObject) []string { return labelsOf(o) }

func logTo(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// holdAt holds lockstepd as the Mac starts the operation op ("verify",
// "change", "rekey", ...; enginetest.Mac.Before names them) the first time
// it does: reached is closed then, and the operation goes on when resume
// is called (it is called at the end of the test too, so a failing test
// does not leave lockstepd stuck).
func holdAt(h *harness, op string) (reached <-chan struct{}, resume func()) {
	h.t.Helper()
	r, g := make(chan struct{}), make(chan struct{})
	var once, onceGo sync.Once
	resume = func() { onceGo.Do(func() { close(g) }) }
	h.world.Mac.Lock()
	h.world.Mac.Before = func(name string) {
		if name != op {
			return
		}
		held := false
		once.Do(func() { held = true; close(r) })
		if held {
			<-g
		}
	}
	h.world.Mac.Unlock()
	h.t.Cleanup(resume)
	return r, resume
}

// useCatalogue renders what tests compute in the language the test runs in:
// English, or the pseudo-locale while TestPseudoLocale runs.
func useCatalogue() {
	lang := "en"
	if pseudoRun {
		lang = text.Pseudo
	}
	text.Use(text.Settings{Languages: []string{lang}, Zone: time.UTC, Now: func() time.Time { return t0 }})
}

// stepLine is how the window says a step in a state, without a detail.
func stepLine(step, kind, state string) string {
	return text.StepLine.S(map[string]any{"Step": text.StepName(step, kind), "State": text.StepState(state)})
}

// step is a step in a state, as a test expects it.
type step struct{ name, state string }

// sameSteps reports whether the step list's lines say the steps want, in
// order, each with or without the detail lockstepd adds ("Directory: done
// (…)" is "Directory: done").
func sameSteps(got []string, kind string, want []step) bool {
	if len(got) != len(want) {
		return false
	}
	for i, w := range want {
		data := map[string]any{"Step": text.StepName(w.name, kind), "State": text.StepState(w.state), "Detail": "\x00"}
		pre, suf, _ := strings.Cut(text.StepLineNote.S(data), "\x00")
		line := got[i]
		if line != stepLine(w.name, kind, w.state) && !(strings.HasPrefix(line, pre) && strings.HasSuffix(line, suf) && len(line) > len(pre)+len(suf)) {
			return false
		}
	}
	return true
}

// busy makes the account busy the way it gets busy: another program (the
// CLI) starts a change, and lockstepd is held at the Mac operation at
// until the test ends.
func busy(t *testing.T, h *harness, at string) {
	t.Helper()
	reached, resume := holdAt(h, at)
	done := make(chan error, 1)
	go func() {
		_, err := h.client.Change(context.Background(), localapi.ChangeRequest{
			User: "alice", Current: []byte(password), New: []byte("Held-change-Pass-1")}, nil)
		done <- err
	}()
	select {
	case <-reached:
	case err := <-done:
		t.Fatalf("the other change ended before it reached %s: %v", at, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("the other change never reached %s", at)
	}
	t.Cleanup(func() { resume(); <-done })
}

// watchCounter is the real client, counting the notices its watch stream
// has handed the app, so a test can wait until lockstepd has re-sent the
// notices that stand.
type watchCounter struct {
	*localapi.Client
	mu sync.Mutex
	n  int
}

func (c *watchCounter) Watch(ctx context.Context, fn func(localapi.Event) error) error {
	return c.Client.Watch(ctx, func(ev localapi.Event) error {
		err := fn(ev) // the app has queued its handling when fn returns
		if ev.Type == localapi.EventNotice {
			c.mu.Lock()
			c.n++
			c.mu.Unlock()
		}
		return err
	})
}

func (c *watchCounter) notices() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// settled reports whether the app has caught up with lockstepd: it shows
// the account's state and reason lockstepd reports now (an operation's
// result comes on its own stream, the status after it on the watch
// stream), or knows lockstepd is not running.
func (h *harness) settled() bool {
	st, err := h.client.Status(context.Background())
	if err != nil {
		return !h.app.connected
	}
	a := h.app.account()
	return a != nil && len(st.Accounts) > 0 && a.State == st.Accounts[0].State && a.Reason.Code == st.Accounts[0].Reason.Code &&
		h.app.status.Directory.State == st.Directory.State
}
