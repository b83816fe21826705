//go:build cgo || !darwin

package ui

import (
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/ui/fakeapi"
	"github.com/lockstep-dev/lockstep/ui/text"
)

const newPassword = "Brand-new-Pass-42"

// openChange opens the Change window and waits for the policy.
func openChange(h *harness) *changeWindow {
	h.t.Helper()
	h.app.ShowChange()
	c := h.app.change
	h.waitFor("the policy", func() bool { return c.policy != nil || c.policyErr != nil })
	return c
}

func fillChange(c *changeWindow, current, nw, confirm, code string) {
	typeIn(c.w, c.current.entry, current)
	typeIn(c.w, c.newPw.entry, nw)
	typeIn(c.w, c.confirm.entry, confirm)
	if code != "" {
		typeIn(c.w, c.code.entry, code)
	}
}

func states(checklist []string) string {
	var out []string
	for _, l := range checklist {
		out = append(out, l[:strings.Index(l, ":")])
	}
	return strings.Join(out, " ")
}

func TestChangeChecklistTicksWhileTyping(t *testing.T) {
	h := newHarness(t, setup{})
	c := openChange(h)
	if c.code.cell.Visible() || c.code.label.Visible() {
		t.Error("code box shown for an account without MFA")
	}
	h.shot("change-empty", c.w)

	// Rules: length, upper, lower, digit, not user name, max length,
	// printable, history (directory only).
	steps := []struct {
		typed string
		want  string
	}{
		{"", "unmet unmet unmet unmet unmet unmet unmet later"},
		{"b", "unmet unmet met unmet met met met later"},
		{"bR", "unmet met met unmet met met met later"},
		{"bR4", "unmet met met met met met met later"},
		{"bR4-alice@example.com", "met met met met unmet met met later"},
	}
	for _, s := range steps {
		c.newPw.entry.SetText("")
		typeIn(c.w, c.newPw.entry, s.typed)
		if got := states(c.checklist); got != s.want {
			t.Errorf("after typing %q the checklist is %q, want %q\n%s", s.typed, got, s.want, strings.Join(c.checklist, "\n"))
		}
		if !c.save.Disabled() {
			t.Errorf("Save enabled after typing only %q as the new password", s.typed)
		}
	}
	if got := c.checklist[len(c.checklist)-1]; got != "later: Not one of your last 5 passwords" {
		t.Errorf("history rule shown as %q", got)
	}

	c.newPw.entry.SetText("")
	typeIn(c.w, c.current.entry, password)
	typeIn(c.w, c.newPw.entry, "Brand-new")
	h.shot("change-typing", c.w)

	typeIn(c.w, c.newPw.entry, "-Pass-42")
	typeIn(c.w, c.confirm.entry, "Brand-new-Pass-4")
	if got := visibleMsg(c.confirm.msg); got != text.ConfirmMismatch.S() {
		t.Errorf("confirm feedback %q, want %q", got, text.ConfirmMismatch.S())
	}
	if !c.save.Disabled() {
		t.Error("Save enabled while the passwords differ")
	}
	h.shot("change-mismatch", c.w)
	typeIn(c.w, c.confirm.entry, "2")
	if got := visibleMsg(c.confirm.msg); got != text.ConfirmMatch.S() {
		t.Errorf("confirm feedback %q, want %q", got, text.ConfirmMatch.S())
	}
	if got := states(c.checklist); got != "met met met met met met met later" {
		t.Errorf("checklist %q with a valid password", got)
	}
	if c.save.Disabled() {
		t.Error("Save disabled with a valid form")
	}
	h.shot("change-valid", c.w)
}

func TestChangeSucceedsWithProgressAndWipesBoxes(t *testing.T) {
	h := newHarness(t, setup{fake: fakeapi.Options{FileVault: true}})
	c := openChange(h)
	fillChange(c, password, newPassword, newPassword, "")

	// Look at the window half-way: the fake waits in its step hook until
	// the window has shown the keychain step running.
	reached := make(chan struct{})
	resume := make(chan struct{})
	h.fake.SetStepHook(func(st localapi.Step) {
		if st.Name == localapi.StepKeychain && st.State == localapi.StepRunning {
			close(reached)
			<-resume
		}
	})
	press(c.w, fyne.KeyReturn) // Return in the confirm box submits
	for _, f := range []*field{c.current, c.newPw, c.confirm, c.code} {
		if f.entry.Text != "" {
			t.Errorf("%s box still holds text after submit", f.label.Text)
		}
	}
	<-reached
	h.waitFor("the keychain step", func() bool {
		r, ok := c.steps.rows[localapi.StepKeychain]
		return ok && strings.Contains(r.text.Text, text.StepRunning.S())
	})
	want := []string{
		"Check the new password: done", "Check your current password: done", "Directory: done",
		"Mac account: done", "Login keychain: in progress",
	}
	if got := stepTexts(c.steps); !slices.Equal(got, want) {
		t.Errorf("progress shows\n%q\nwant\n%q", got, want)
	}
	h.shot("change-progress", c.w)
	close(resume)

	h.waitFor("the result", func() bool { return c.done })
	if got := h.fake.DirectoryPassword(); got != newPassword {
		t.Errorf("directory password %q, want the new one", got)
	}
	if got := h.fake.MacPassword(); got != newPassword {
		t.Errorf("Mac password %q, want the new one", got)
	}
	if c.heading.Text != text.ChangeDone.S() {
		t.Errorf("heading %q after success", c.heading.Text)
	}
	updated := texts(c.result)
	for _, place := range []string{"Directory", "Mac account", "Login keychain", "FileVault"} {
		if !slices.Contains(updated, place) {
			t.Errorf("success screen does not say %q was updated: %q", place, updated)
		}
	}
	h.shot("change-done", c.w)
	press(c.w, fyne.KeyReturn)
	if h.app.change.w != nil {
		t.Error("Return on the success screen did not close the window")
	}
	h.waitFor("the tray to show the new state", func() bool {
		return h.app.status.Accounts[0].LastOperation != nil
	})
}

func TestChangeErrorsShownAtTheirField(t *testing.T) {
	inSync := func(*fakeapi.Fake) {}
	tests := []struct {
		name    string
		mfa     bool
		before  func(*fakeapi.Fake)
		current string
		nw      string
		code    string
		field   func(*changeWindow) *message
		want    string
		refused bool // the history rule turns red
	}{
		{name: "wrong-current", before: inSync, current: "not-my-password", nw: newPassword,
			field: func(c *changeWindow) *message { return c.current.msg }, want: text.ErrWrongCurrent.S()},
		{name: "history", before: inSync, current: password, nw: password,
			field: func(c *changeWindow) *message { return c.newPw.msg },
			want:  text.ErrPolicy.S() + "\n• Not one of your last 5 passwords", refused: true},
		{name: "mfa-invalid", mfa: true, before: inSync, current: password, nw: newPassword, code: "999999",
			field: func(c *changeWindow) *message { return c.code.msg }, want: text.ErrMFAInvalid.S()},
		{name: "mfa-replayed", mfa: true, before: func(f *fakeapi.Fake) {
			// The code was used a moment ago, by another change.
			if _, err := f.Change(t.Context(), localapi.ChangeRequest{Current: []byte(password), New: []byte("Another-Pass-77"), TOTP: "123456"}, nil); err != nil {
				t.Fatal(err)
			}
		}, current: "Another-Pass-77", nw: newPassword, code: "123456",
			field: func(c *changeWindow) *message { return c.code.msg }, want: text.ErrMFAReplayed.S()},
		{name: "locked", before: func(f *fakeapi.Fake) { f.Lock(t0.Add(48 * time.Minute)) }, current: password, nw: newPassword,
			field: func(c *changeWindow) *message { return c.banner.message },
			want:  text.ErrLocked.S(map[string]any{"Until": "11:30"})},
		{name: "offline", before: func(f *fakeapi.Fake) {
			f.SetConnection(localapi.ConnOffline, t0.Add(-30*time.Minute), "dial tcp: connection refused")
		}, current: password, nw: newPassword,
			field: func(c *changeWindow) *message { return c.banner.message }, want: text.ErrOffline.S()},
		{name: "busy", before: func(f *fakeapi.Fake) {
			f.Update(func(s *localapi.Status) { s.Accounts[0].State = localapi.StateBusy })
		}, current: password, nw: newPassword,
			field: func(c *changeWindow) *message { return c.banner.message }, want: text.ErrBusy.S()},
		{name: "not-running", before: func(f *fakeapi.Fake) { f.SetDown(true) }, current: password, nw: newPassword,
			field: func(c *changeWindow) *message { return c.banner.message }, want: text.ErrNotRunning.S()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, setup{fake: fakeapi.Options{MFA: tt.mfa, ValidCodes: []string{"123456", "654321"}}})
			c := openChange(h)
			if tt.mfa != c.code.cell.Visible() {
				t.Fatalf("code box visible=%v for MFA=%v", c.code.cell.Visible(), tt.mfa)
			}
			fillChange(c, tt.current, tt.nw, tt.nw, tt.code)
			tt.before(h.fake)
			if c.save.Disabled() {
				t.Fatalf("Save disabled; checklist %q", c.checklist)
			}
			test.Tap(c.save)
			h.waitFor("the error", func() bool { return !c.running && c.form.Visible() })
			msg := tt.field(c)
			if got := visibleMsg(msg); got != tt.want {
				t.Errorf("error shown %q, want %q", got, tt.want)
			}
			for _, m := range []*message{c.current.msg, c.newPw.msg, c.code.msg, c.banner.message} {
				if m != msg && m.box.Visible() && m.text.Importance == widget.DangerImportance {
					t.Errorf("another error also shown: %q", m.text.Text)
				}
			}
			if tt.refused != slices.Contains(c.checklist, "refused: Not one of your last 5 passwords") {
				t.Errorf("history rule refused=%v, want %v: %q", !tt.refused, tt.refused, c.checklist)
			}
			for _, f := range []*field{c.current, c.newPw, c.confirm, c.code} {
				if f.entry.Text != "" {
					t.Errorf("%s box refilled after a failure", f.label.Text)
				}
			}
			h.shot("change-error-"+tt.name, c.w)
		})
	}
}

func TestChangeKeyboard(t *testing.T) {
	h := newHarness(t, setup{fake: fakeapi.Options{MFA: true, ValidCodes: []string{"123456"}}})
	c := openChange(h)
	h.shot("change-mfa", c.w)
	cv := c.w.Canvas()
	if cv.Focused() != c.current.entry {
		t.Fatalf("focus starts on %T, want the current password", cv.Focused())
	}
	order := []fyne.Focusable{c.newPw.entry, c.confirm.entry, c.code.entry, c.cancel}
	for i, want := range order {
		test.FocusNext(cv)
		if cv.Focused() != want {
			t.Fatalf("Tab %d goes to %T %v, want %T", i+1, cv.Focused(), cv.Focused(), want)
		}
	}
	// Save is disabled, so Tab skips it and wraps around.
	test.FocusNext(cv)
	if cv.Focused() != c.current.entry {
		t.Errorf("Tab from Cancel goes to %T, want the current password (Save is disabled)", cv.Focused())
	}

	// Return on an invalid form does nothing.
	typeIn(c.w, c.current.entry, password)
	press(c.w, fyne.KeyReturn)
	if c.running || len(h.fake.Calls()) != 0 {
		t.Fatal("Return submitted an incomplete form")
	}
	// The code must be digits.
	fillChange(c, "", newPassword, newPassword, "12ab")
	if got := visibleMsg(c.code.msg); got != text.CodeInvalidFormat.S(map[string]any{"N": protocol.TOTPDigits}) {
		t.Errorf("code hint %q", got)
	}
	if !c.save.Disabled() {
		t.Error("Save enabled with a malformed code")
	}
	c.code.entry.SetText("")
	typeIn(c.w, c.code.entry, "123456")
	if c.save.Disabled() {
		t.Fatal("Save disabled with a valid form")
	}
	test.FocusNext(cv) // Cancel
	test.FocusNext(cv) // Save
	if cv.Focused() != c.save {
		t.Fatalf("Tab after the code reaches %T, want Save", cv.Focused())
	}
	// Escape from anywhere cancels, and the boxes are emptied.
	entries := []*secretEntry{c.current.entry, c.newPw.entry, c.confirm.entry, c.code.entry}
	typeIn(c.w, c.newPw.entry, "")
	press(c.w, fyne.KeyEscape)
	if h.app.change.w != nil {
		t.Fatal("Escape did not close the window")
	}
	for _, e := range entries {
		if e.Text != "" {
			t.Errorf("a box still holds %d characters after Escape", len(e.Text))
		}
	}
	if len(h.fake.Calls()) != 0 {
		t.Errorf("cancel sent %v", h.fake.Calls())
	}
}

// The Mac's own password rules are shown beside the directory's, in the
// Mac's words, and checked live; one the Mac alone can check says so.
func TestChangeChecklistShowsMacRules(t *testing.T) {
	h := newHarness(t, setup{fake: fakeapi.Options{MacRules: []protocol.LocalRule{
		{ID: "ProfilePayload:X:minLength", Pattern: ".{20,}", Descriptions: map[string]string{"en": "Contain at least 20 characters."}},
		{ID: "Password History", Descriptions: map[string]string{"en": "Not one of the last 3 Mac passwords."}},
	}}})
	c := openChange(h)
	fillChange(c, password, newPassword, newPassword, "")
	want := []string{"unmet: Contain at least 20 characters.", "later: Not one of the last 3 Mac passwords. (checked when you save)"}
	if got := c.checklist[len(c.checklist)-2:]; !slices.Equal(got, want) {
		t.Fatalf("Mac rules in the checklist = %q, want %q", got, want)
	}
	if !c.save.Disabled() {
		t.Error("Save enabled with a password this Mac refuses")
	}
	long := newPassword + "-and-longer"
	c.newPw.entry.SetText("")
	c.confirm.entry.SetText("")
	typeIn(c.w, c.newPw.entry, long)
	typeIn(c.w, c.confirm.entry, long)
	if got := c.checklist[len(c.checklist)-2]; got != "met: Contain at least 20 characters." {
		t.Errorf("after a long enough password: %q", got)
	}
	if c.save.Disabled() {
		t.Error("Save disabled with a password both policies take")
	}
	h.shot("change-mac-rules", c.w)
}
