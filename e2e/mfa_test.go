package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/internal/tools/testtool"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/ui"
)

// notesApp records the notifications the app shows.
type notesApp struct {
	fyne.App
	mu    sync.Mutex
	notes []string
}

func (n *notesApp) SendNotification(nt *fyne.Notification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notes = append(n.notes, nt.Title+"\n"+nt.Content)
}

func (n *notesApp) all() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.notes, "\n")
}

// mfaReset is an administrator's MFA reset with an enrolment period,
// through the running directory's admin API (what `lockstep-directory
// user mfa NAME --reset --enroll-days N` does).
func mfaReset(t *testing.T, u *user, days int) admin.User {
	t.Helper()
	res, err := shared.admin.SetMFAWith(t.Context(), u.name, admin.MFARequest{Action: admin.MFAReset, EnrollDays: days})
	if err != nil {
		t.Fatal(err)
	}
	if res.MFA != nil || res.User.MFAEnrollBy == nil {
		t.Fatalf("reset with a period: %+v", res)
	}
	return res.User
}

// enrolled checks with the directory that u's MFA is enrolled: codes are
// required (no enrolment pending) and a change with a code from the new
// key goes through the real directory.
func enrolled(t *testing.T, m *mac, u *user, key string, step int64) {
	t.Helper()
	du, err := shared.admin.User(t.Context(), u.name)
	if err != nil {
		t.Fatal(err)
	}
	if !du.MFA || du.MFAEnrollBy != nil {
		t.Fatalf("the directory after the enrolment: MFA %v, enrol by %v", du.MFA, du.MFAEnrollBy)
	}
	u.secret, u.lastStep = key, step // the confirming code is spent
	nw := newPassword()
	if r := m.cli(lines(u.password, nw), "change", "--stdin", "--user", "alice"); r.code == 0 {
		t.Fatalf("a change without a code went through after the enrolment: %s", r)
	}
	if r := m.cli(lines(u.password, nw, u.code(t)), "change", "--stdin", "--user", "alice"); r.code != 0 {
		t.Fatalf("a change with the new authenticator's code: %s", r)
	}
	u.password = nw
	u.known = append(u.known, nw)
	m.places(nw)
	// lockstepd reported each place after the change: the directory shows
	// this Mac in step, place by place, for IT.
	deadline := time.Now().Add(20 * time.Second)
	for {
		du, err := shared.admin.User(t.Context(), u.name)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, d := range du.Devices {
			if d.LocalName != "alice" {
				continue // the harness's probe session
			}
			for _, p := range d.Places {
				got[p.Place] = p.State
			}
		}
		if got["directory"] == "ok" && got["local"] == "ok" && got["keychain"] == "ok" && got["filevault"] == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the directory's view of this Mac's places: %v (%+v)", got, du.Devices)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An MFA reset with an enrolment period reaches the Mac: the menu bar
// says "Set up your authenticator", a notification says so (without the
// key), the window shows the key the directory made, a code from it
// confirms the set-up, and the directory then requires codes. The key
// never reaches a log, the journal, a state file or a notification.
func TestMFAEnrolmentThroughTheApp(t *testing.T) {
	u := newUser(t, shared, true)
	m := newMac(t, shared, u)
	fa := &notesApp{App: test.NewTempApp(t)}
	q := ui.NewQueue()
	app := ui.New(fa, m.client, ui.Options{Tray: nopTray{}, Do: q.Do, Quit: func() {},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); app.Run(ctx) }()
	defer func() { cancel(); <-done }()
	d := app.Driver()
	wait := func(what string, cond func() bool) {
		t.Helper()
		if err := q.RunUntil(cond, 30*time.Second); err != nil {
			t.Fatalf("%s: %v (menu %q)", what, err, d.Menu())
		}
	}
	wait("connect", func() bool { return d.Connected() && d.Status() != nil && len(d.Status().Accounts) == 1 })
	oldSecret := u.secret

	du := mfaReset(t, u, 14)
	wait("the menu to offer the set-up", func() bool { return slices.Contains(d.Menu(), "Set up your authenticator…") })
	if a := m.account(); a.State != localapi.StateMFAEnroll || a.MFAEnrollBy == nil || !a.MFAEnrollBy.Equal(*du.MFAEnrollBy) {
		t.Fatalf("lockstepd after the push: %s, enrol by %v (directory: %v)", a.State, a.MFAEnrollBy, du.MFAEnrollBy)
	}
	wait("the notification", func() bool { return strings.Contains(fa.all(), "Set up your authenticator") })
	if err := d.Click("Set up your authenticator…"); err != nil {
		t.Fatal(err)
	}
	wait("the key", func() bool { return d.View(ui.WindowEnroll).Key != "" })
	v := d.View(ui.WindowEnroll)
	key := strings.ReplaceAll(v.Key, " ", "")
	if len(key) != 32 || key == oldSecret || len(v.QR) == 0 || !strings.Contains(v.Until, "Set it up by") {
		t.Fatalf("the window shows key %q (old %q), %d bytes of QR, %q", key, oldSecret, len(v.QR), v.Until)
	}
	// The QR code holds the directory's otpauth URI of that key, as an
	// independent reader (zbar) decodes it.
	zb := testtool.Need(t, "zbarimg", "zbar-tools")
	qrFile := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(qrFile, v.QR, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(zb, "--raw", "-q", qrFile).Output(); err != nil || !strings.HasPrefix(string(out), "otpauth://totp/") ||
		!strings.Contains(string(out), "secret="+key) || !strings.Contains(string(out), u.name) {
		t.Fatalf("the QR code reads %q (%v)", out, err)
	}
	// A code from the old authenticator does not confirm the new one.
	u.lastStep = 0
	if err := d.Type(ui.WindowEnroll, ui.BoxCode, u.code(t)); err != nil {
		t.Fatal(err)
	}
	if err := d.Press(ui.WindowEnroll, fyne.KeyReturn); err != nil {
		t.Fatal(err)
	}
	wait("the refusal", func() bool { v := d.View(ui.WindowEnroll); return !v.Running && len(v.Errors) > 0 })
	phone := &user{secret: key}
	if err := d.Type(ui.WindowEnroll, ui.BoxCode, phone.code(t)); err != nil {
		t.Fatal(err)
	}
	if err := d.Press(ui.WindowEnroll, fyne.KeyReturn); err != nil {
		t.Fatal(err)
	}
	wait("the set-up", func() bool { v := d.View(ui.WindowEnroll); return v.Done || (!v.Running && v.Banner != "") })
	if v := d.View(ui.WindowEnroll); !v.Done {
		t.Fatalf("the set-up failed in the app: %+v", v)
	}
	wait("the menu to drop the item", func() bool { return !slices.Contains(d.Menu(), "Set up your authenticator…") })
	enrolled(t, m, u, key, phone.lastStep)
	if strings.Contains(fa.all(), key) {
		t.Error("the key is in a notification")
	}
	assertNoSecrets(t, m, u, u.known...)
}

// The same through the CLI: a change during the period asks no code, then
// `lockstep mfa enroll` shows the key (QR code in text blocks and text) and
// takes the code; the directory then requires codes.
func TestMFAEnrolmentThroughTheCLI(t *testing.T) {
	u := newUser(t, shared, true)
	m := newMac(t, shared, u)
	mfaReset(t, u, 7)
	m.waitState(localapi.StateMFAEnroll)

	nw := newPassword()
	r := m.cli(lines(u.password, nw), "change", "--stdin", "--user", "alice")
	if r.code != 0 || !strings.Contains(r.stderr, "lockstep mfa enroll") {
		t.Fatalf("a change during the period: %s", r)
	}
	u.password = nw
	u.known = append(u.known, nw)
	m.places(nw)
	if a := m.account(); a.State != localapi.StateMFAEnroll {
		t.Fatalf("after the change: %s", a.State)
	}

	key, step, out := m.enrollCLI(t)
	if !strings.Contains(out, "Your authenticator is set up") {
		t.Fatalf("mfa enroll:\n%s", out)
	}
	enrolled(t, m, u, key, step)
	assertNoSecrets(t, m, u, u.known...)
}

// enrollCLI runs `lockstep mfa enroll` as a person at a terminal would: it
// reads the key the command shows, computes a code as a phone does and
// types it in. It returns the key, the code's time step and everything
// the command printed.
func (m *mac) enrollCLI(t *testing.T) (key string, step int64, output string) {
	t.Helper()
	cmd := exec.Command(bin.lockstep, "mfa", "enroll", "--stdin", "--user", "alice", "--socket", m.socket)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { <-ctx.Done(); cmd.Process.Kill() }()
	var seen strings.Builder
	sc := bufio.NewScanner(stderr)
	qrRows := 0
	for sc.Scan() {
		line := sc.Text()
		seen.WriteString(line + "\n")
		if strings.ContainsAny(line, "█▀▄") {
			qrRows++
		}
		if k, ok := strings.CutPrefix(line, "Or type this key into the app: "); ok {
			key = strings.ReplaceAll(k, " ", "")
			break
		}
	}
	if key == "" || qrRows < 10 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no key or QR code (%d rows) on the terminal:\n%s", qrRows, seen.String())
	}
	phone := &user{secret: key}
	fmt.Fprintln(stdin, phone.code(t))
	stdin.Close()
	rest, _ := io.ReadAll(stderr)
	seen.Write(rest)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mfa enroll: %v\n%s%s", err, stdout.String(), seen.String())
	}
	if strings.Contains(stdout.String(), key) {
		t.Error("the key reached stdout")
	}
	return key, phone.lastStep, stdout.String() + seen.String()
}
