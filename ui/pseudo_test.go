//go:build cgo || !darwin

package ui

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstep-dev/lockstep/agent/enginetest"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// pseudoRun is set while TestPseudoLocale runs the golden tests in the
// pseudo-locale: the app then renders every catalogue string accented and
// in ⟦ ⟧, shot walks the window's words instead of comparing its picture,
// and every tray menu and notification is read as it is shown.
var pseudoRun bool

// TestPseudoLocale runs every test that captures a golden window, the tray
// menu in each state and the notifications, with the app in the
// pseudo-locale, and reads every word on screen: window titles, labels,
// buttons, check boxes, placeholders, checklist lines, menu items and
// notification titles and bodies. Each must come from the catalogue, or be
// data (the user's names, a path, a number, a time, a version, a Mac
// password rule in the Mac's own words); any other word is text that a
// translation cannot reach, and fails with the window it is in.
func TestPseudoLocale(t *testing.T) {
	pseudoRun = true
	useCatalogue()
	t.Cleanup(func() { pseudoRun = false; useCatalogue() })
	for _, tt := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"ChangeChecklistTicksWhileTyping", TestChangeChecklistTicksWhileTyping},
		{"ChangeSucceedsWithProgressAndWipesBoxes", TestChangeSucceedsWithProgressAndWipesBoxes},
		{"ChangeErrorsShownAtTheirField", TestChangeErrorsShownAtTheirField},
		{"ChangeKeyboard", TestChangeKeyboard},
		{"ChangeChecklistShowsMacRules", TestChangeChecklistShowsMacRules},
		{"SyncAfterAdminReset", TestSyncAfterAdminReset},
		{"SyncTemporaryPasswordGoesOnToChange", TestSyncTemporaryPasswordGoesOnToChange},
		{"SyncForgotPrevious", TestSyncForgotPrevious},
		{"SyncForgotUnavailableWithoutServiceAccount", TestSyncForgotUnavailableWithoutServiceAccount},
		{"LinkFromTheTray", TestLinkFromTheTray},
		{"LinkOffline", TestLinkOffline},
		{"EnrollFromTheTray", TestEnrollFromTheTray},
		{"ChangeDuringEnrolmentThenEnroll", TestChangeDuringEnrolmentThenEnroll},
		{"EnrollAfterThePeriod", TestEnrollAfterThePeriod},
		{"StatusWindow", TestStatusWindow},
		{"AboutWindow", TestAboutWindow},
		{"TrayMenuForEachState", TestTrayMenuForEachState},
		{"TrayReconnectsAndDoesNotRepeatNotifications", TestTrayReconnectsAndDoesNotRepeatNotifications},
		{"Notifications", TestNotifications},
		{"TemporaryResetWithMFAEndToEnd", TestTemporaryResetWithMFAEndToEnd},
		{"RecoverOldKeychain", TestRecoverOldKeychain},
	} {
		t.Run(tt.name, tt.fn)
	}
}

// The pseudo-locale check has to fail on English: a label, a button, a
// menu item and a notification that do not come from the catalogue are each
// caught, and data is not.
func TestPseudoCheckCatchesEnglish(t *testing.T) {
	pseudoRun = true
	useCatalogue()
	t.Cleanup(func() { pseudoRun = false; useCatalogue() })
	h := newHarness(t, setup{})
	ok := text.StepLine.S(map[string]any{"Step": text.StepName("directory", "change"), "State": text.StepState("done")})
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{ok, true},
		{text.ForAccount.S(map[string]any{"Name": "Alice Example", "User": "alice@example.com"}), true},
		{text.StatusPlaceChanged.S(map[string]any{"Place": text.PlaceDirectory.S(), "State": text.PlaceOK.S(), "At": "28 Feb 10:42"}), true},
		{"alice@example.com", true},
		{"1.0.0", true},
		{"10:42", true},
		{"—", true},
		{"Change Password…", false},
		{ok + ". Last changed 10:42", false}, // English beside catalogue text
		{text.StepLine.S(map[string]any{"Step": "Directory", "State": text.StepState("done")}), false}, // English inside
	} {
		if got := h.untranslated(tt.s) == ""; got != tt.want {
			t.Errorf("%q taken as translated: %v, want %v", tt.s, got, tt.want)
		}
	}
}

// times are times and dates as text.Clock and text.Date write them: data.
var times = regexp.MustCompile(`\b\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)( \d{4})?\b|\b\d{1,2}:\d{2}\b`)

// data lists what the app shows in the user's, the Mac's or lockstepd's
// own words, longest first: names, versions, paths, the Mac's rules.
func (h *harness) data() []string {
	o := h.world.Options()
	// The directory's enrolment key is data too (shown in groups of four).
	d := []string{o.LocalUser, o.DirectoryUser, o.DisplayName, o.Version, appVersion(), text.KeyGroups(enginetest.EnrollSecret)}
	for _, r := range o.MacRules {
		for _, s := range r.Descriptions {
			d = append(d, s)
		}
	}
	h.world.Mac.Lock()
	for _, m := range h.world.Mac.Moved {
		path, _, _ := strings.Cut(m, "=")
		d = append(d, path)
	}
	for _, a := range h.world.Mac.Aside {
		d = append(d, a.Path, filepath.Base(a.Path))
	}
	h.world.Mac.Unlock()
	slices.SortFunc(d, func(a, b string) int { return len(b) - len(a) })
	return d
}

// untranslated returns what in s did not come from the catalogue, or ""
// when all of it did or is data. Catalogue text is in ⟦ ⟧ with every
// vowel (and c, n, y) accented, so a plain one left once the data is taken
// out is English: beside the brackets or inside them, put there as a
// template's value.
func (h *harness) untranslated(s string) string {
	rest := s
	for _, d := range h.data() {
		if d != "" {
			rest = strings.ReplaceAll(rest, d, "")
		}
	}
	rest = times.ReplaceAllString(rest, "")
	if !strings.ContainsFunc(rest, isLetter) {
		return "" // data, numbers and punctuation only
	}
	if !text.IsPseudo(s) {
		return s
	}
	if strings.ContainsAny(rest, "aeiouycnAEIOUYCN") {
		return rest
	}
	return ""
}

func isLetter(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || r > 0x7f && r != '⟦' && r != '⟧' && r != '…' && r != '—' && r != '•'
}

// checkPseudo fails the test for every word in the window that is not from
// the catalogue.
func (h *harness) checkPseudo(where string, w fyne.Window) {
	h.t.Helper()
	h.checkString(where+" (window title)", w.Title())
	h.walk(where, w.Content())
}

func (h *harness) checkString(where, s string) {
	h.t.Helper()
	if s == "" {
		return
	}
	if bad := h.untranslated(s); bad != "" {
		h.t.Errorf("%s shows %q, not from the catalogue (%q)", where, s, bad)
	}
}

// walk reads every visible text in o. An object it does not know fails the
// test: a new kind of widget must be taught here, or its words would go
// unchecked.
func (h *harness) walk(where string, o fyne.CanvasObject) {
	h.t.Helper()
	if o == nil || !o.Visible() {
		return
	}
	switch v := o.(type) {
	case *fyne.Container:
		for _, c := range v.Objects {
			h.walk(where, c)
		}
	case *widget.Label:
		h.checkString(where+" (label)", v.Text)
	case *canvas.Text:
		h.checkString(where+" (text)", v.Text)
	case *button:
		h.checkString(where+" (button)", v.Text)
	case *widget.Button:
		h.checkString(where+" (button)", v.Text)
	case *check:
		h.checkString(where+" (check box)", v.Text)
	case *widget.Check:
		h.checkString(where+" (check box)", v.Text)
	case *secretEntry:
		// What is typed is the user's; the placeholder is the app's.
		h.checkString(where+" (placeholder)", v.PlaceHolder)
	case *widget.Entry:
		h.checkString(where+" (placeholder)", v.PlaceHolder)
	case *widget.Icon, *widget.Separator, *canvas.Rectangle, *canvas.Image, *layout.Spacer:
	default:
		h.t.Errorf("%s: the pseudo-locale check cannot read a %T", where, o)
	}
}

// checkMenu reads the tray menu as it is set.
func (h *harness) checkMenu(m *fyne.Menu) {
	h.t.Helper()
	h.checkString("tray menu (title)", m.Label)
	for _, it := range m.Items {
		if !it.IsSeparator {
			h.checkString("tray menu", it.Label)
		}
	}
}

// checkNotification reads a notification as it is sent.
func (h *harness) checkNotification(n *fyne.Notification) {
	h.t.Helper()
	h.checkString("notification (title)", n.Title)
	h.checkString("notification (body)", n.Content)
}
