package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/internal/tools/browsertest"
	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// The web console and the portal against the real binaries: an
// administrator's temporary reset in the console reaches the simulated
// Mac's lockstepd at once ("sync needed"), the Mac syncs, the console then
// shows it in step; a change in the portal reaches it the same way.

// startDirectoryCert starts lockstep-directory with the browser tests'
// certificate (the one Chromium trusts); the Macs trust it too.
func startDirectoryCert(t *testing.T) *dirProc {
	t.Helper()
	certFile, keyFile := browsertest.Cert(t)
	data := t.TempDir()
	d := &dirProc{data: data, log: &syncBuffer{}, ca: certFile}
	args := append(append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, directoryArgs...), "--cert", certFile, "--key", keyFile)
	d.cmd = exec.Command(bin.directory, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if info, err := admin.ReadInfo(data); err == nil {
			c, cerr := admin.New(admin.Config{URL: info.URL, TokenFile: info.TokenFile, CAFile: certFile})
			if cerr == nil {
				if _, perr := c.Policy(context.Background()); perr == nil {
					d.admin = c
					d.addr = strings.TrimPrefix(info.URL, "https://")
					return d
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the directory did not come up:\n%s", d.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// codeAt is the current TOTP code of a secret (real time: the binaries
// run on the real clock); each secret here is used once per step.
func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWebResetReachesMac(t *testing.T) {
	b := browsertest.Need(t)
	d := startDirectoryCert(t)
	url := "https://" + d.addr
	u := newUser(t, d, false)
	m := newMac(t, d, u)
	adminPass := "Console-Passphrase-9"
	res, err := d.admin.AddAdmin(t.Context(), admin.AddAdminRequest{Name: "root", Password: protocol.Secret(adminPass)})
	if err != nil {
		t.Fatal(err)
	}

	p := b.NewPage(t)
	p.Go(url + "/admin/login")
	p.Type("#name", "root")
	p.Type("#password", adminPass)
	p.Click("main button[type=submit]")
	p.Type("#code", codeAt(t, string(res.MFA.Secret), time.Now()))
	p.Click("main button[type=submit]")
	if h := p.Text("h1"); h != "Users" {
		t.Fatalf("signing in to the console shows %q", h)
	}
	p.Go(url + "/admin/users/" + u.name)
	if got := p.Text("#macs tbody"); !strings.Contains(got, "connected now") {
		t.Errorf("the user's Macs read %q", got)
	}
	// The reset: generated, temporary (the form's defaults).
	p.Click("#reset-h + form button[type=submit]")
	temp := p.Text("#generated-password")
	if len(temp) < 12 {
		t.Fatalf("the generated password reads %q (%s)", temp, p.Text("main"))
	}
	m.waitState(localapi.StateSyncNeeded)
	p.Go(url + "/admin/users/" + u.name)
	if got := p.Text("#macs tbody"); !strings.Contains(got, "Sync needed") && !strings.Contains(got, "No report yet") {
		t.Errorf("after the reset the console shows the Mac as %q", got)
	}

	// The user syncs on the Mac (previous Mac password, the temporary one)
	// and picks a permanent one; the console then shows the Mac in step.
	old, perm := u.password, newPassword()
	r := m.cli(lines(old, temp, perm), "sync", "--stdin", "--user", "alice")
	if r.code != 0 {
		t.Fatalf("sync after the console's reset: %s", r)
	}
	m.places(perm, old, temp)
	// In step, with each place as the Mac reported it.
	m.eventually("the console to show the Mac and each place in step", 10*time.Second, func() bool {
		p.Go(url + "/admin/users/" + u.name)
		row := p.Text("#macs tbody")
		return strings.Contains(row, "In step") && strings.Contains(row, "Mac account: in step") &&
			strings.Contains(row, "login keychain: in step") && strings.Contains(row, "FileVault: in step")
	})

	// A change in the portal reaches the Mac at once, too.
	q := b.NewPage(t)
	q.Go(url + "/")
	q.Type("#name", u.name)
	q.Type("#password", perm)
	q.Click("main button[type=submit]")
	if h := q.Text("h1"); h != "Your account" {
		t.Fatalf("signing in to the portal shows %q", h)
	}
	q.Click("a[href='/password']")
	next := newPassword()
	q.Type("#current", perm)
	q.Type("#new", next)
	q.Type("#confirm", next)
	q.Click("#change-form button[type=submit]")
	if got := q.Text(".banner.notice"); !strings.Contains(got, "Your password is changed") {
		t.Fatalf("the portal's change reads %q", got)
	}
	m.waitState(localapi.StateSyncNeeded)
	r = m.cli(lines(perm, next), "sync", "--stdin", "--user", "alice")
	if r.code != 0 {
		t.Fatalf("sync after the portal's change: %s", r)
	}
	m.places(next, old, temp, perm)
	if strings.Contains(d.log.String(), temp) || strings.Contains(d.log.String(), next) {
		t.Error("a password is in the directory's log")
	}
}
