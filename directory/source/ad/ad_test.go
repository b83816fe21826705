package ad

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/sourcetest"
	"github.com/lockstep-dev/lockstep/internal/tools/sambatest"
	"github.com/lockstep-dev/lockstep/internal/tools/tcpproxy"
)

func TestMain(m *testing.M) { sambatest.Main(m) }

// env is a DC with an OU of the test's own and a service account in it.
type env struct {
	dc  *sambatest.DC
	ou  string
	svc sambatest.User
}

func newEnv(t *testing.T, rights ...string) env {
	t.Helper()
	dc := sambatest.Need(t)
	ou := dc.NewOU(t)
	return env{dc: dc, ou: ou, svc: dc.ServiceAccount(t, ou, rights...)}
}

func (e env) config() Config {
	return Config{URL: sambatest.URL, CAFile: e.dc.CAFile, BaseDN: e.ou, BindDN: e.svc.DN, BindPassword: []byte(e.svc.Password),
		Timeout: 10 * time.Second}
}

func (e env) source(t *testing.T, mod func(*Config)) *Source {
	t.Helper()
	cfg := e.config()
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The conformance suite, against a real Samba AD DC, with a service
// account holding the rights of the README's "read, reset and unlock".
func TestConformance(t *testing.T) {
	e := newEnv(t, sambatest.RightReset, sambatest.RightPwdLastSet, sambatest.RightLockoutTime)
	s := e.source(t, nil)
	sourcetest.Run(t, sourcetest.Fixture{
		Source: s,
		NewUser: func(t *testing.T, password string) string {
			return e.dc.AddUser(t, e.ou, "u", password).Name
		},
		Elsewhere: func(t *testing.T, user, password string, temporary bool) {
			e.dc.SetPassword(t, "CN="+user+","+e.ou, password, temporary)
		},
		LockoutThreshold: 5,
	})
}

// A bind account with read rights only: reset and unlock say which right
// it lacks, and nothing changes; verify and change (as the user) work.
func TestReadOnlyAccount(t *testing.T) {
	e := newEnv(t)
	s := e.source(t, nil)
	u := e.dc.AddUser(t, e.ou, "ro", sourcetest.Password())
	ctx := t.Context()
	_, err := s.Reset(ctx, u.Name, []byte(sourcetest.Password()), true, source.Hooks{})
	var np *source.NotPermittedError
	if !errors.As(err, &np) || !strings.Contains(np.Need, "Reset Password") {
		t.Fatalf("Reset with a read-only account = %v, want a NotPermittedError naming Reset Password", err)
	}
	if _, err := s.Unlock(ctx, u.Name, source.Hooks{}); !errors.As(err, &np) || !strings.Contains(np.Need, "lockoutTime") {
		t.Fatalf("Unlock with a read-only account = %v, want a NotPermittedError naming lockoutTime", err)
	}
	if err := e.dc.Bind(u.DN, u.Password); err != nil {
		t.Fatalf("the refused reset changed the password: %v", err)
	}
	nw := sourcetest.Password()
	if _, err := s.Change(ctx, u.Name, []byte(u.Password), []byte(nw), source.Attempt{}, source.Hooks{}); err != nil {
		t.Fatalf("a change as the user needs no delegated right: %v", err)
	}
	// Reset alone without pwdLastSet: a permanent reset works, a temporary
	// one is refused whole (never a new password without its mark).
	e2 := newEnv(t, sambatest.RightReset)
	s2 := e2.source(t, nil)
	u2 := e2.dc.AddUser(t, e2.ou, "rr", sourcetest.Password())
	if _, err := s2.Reset(ctx, u2.Name, []byte(sourcetest.Password()), false, source.Hooks{}); err != nil {
		t.Fatalf("a permanent reset with Reset Password: %v", err)
	}
	if _, err := s2.Reset(ctx, u2.Name, []byte(sourcetest.Password()), true, source.Hooks{}); !errors.As(err, &np) || !strings.Contains(np.Need, "pwdLastSet") {
		t.Fatalf("a temporary reset without Write pwdLastSet = %v", err)
	}
}

// AD's bind sub-codes: a disabled account and an expired one are
// ErrDisabled, not a wrong password; a password that must be changed is
// right (MustChange).
func TestBindSubCodes(t *testing.T) {
	e := newEnv(t)
	s := e.source(t, nil)
	ctx := t.Context()
	dis := e.dc.AddUser(t, e.ou, "dis", sourcetest.Password())
	e.dc.Tool(t, "user", "disable", dis.Name)
	if _, err := s.Verify(ctx, dis.Name, []byte(dis.Password), source.Attempt{}); !errors.Is(err, source.ErrDisabled) {
		t.Fatalf("a disabled account (533) = %v, want ErrDisabled", err)
	}
	exp := e.dc.AddUser(t, e.ou, "exp", sourcetest.Password())
	e.dc.Tool(t, "user", "setexpiry", exp.Name, "--days=0")
	if _, err := s.Verify(ctx, exp.Name, []byte(exp.Password), source.Attempt{}); !errors.Is(err, source.ErrDisabled) {
		t.Fatalf("an expired account (701) = %v, want ErrDisabled", err)
	}
	must := e.dc.AddUser(t, e.ou, "must", sourcetest.Password())
	e.dc.SetPassword(t, must.DN, must.Password, true)
	a, err := s.Verify(ctx, must.Name, []byte(must.Password), source.Attempt{})
	if err != nil || !a.MustChange {
		t.Fatalf("must change (773) = %+v, %v", a, err)
	}
	if sub := subCode(e.dc.Bind(must.DN, must.Password)); sub != subMustChange {
		t.Fatalf("the DC's sub-code for a must-change bind is %q", sub)
	}
	// Two temporary resets in a row are two changes: the stamp moves
	// (pwdLastSet stays 0; unicodePwd's metadata version does not).
	s1 := a.Stamp
	e.dc.SetPassword(t, must.DN, sourcetest.Password(), true)
	b, err := s.Account(ctx, must.Name)
	if err != nil || b.Stamp == s1 || !b.MustChange {
		t.Fatalf("after a second temporary reset: %+v (stamp before %q), %v", b, s1, err)
	}
}

// setNotificationLimit sets MaxNotificationPerConn in the Default Query
// Policy (as an AD administrator would with ntdsutil) and returns the old
// lDAPAdminLimits.
func setNotificationLimit(t *testing.T, dc *sambatest.DC, n int) {
	t.Helper()
	dn := "CN=Default Query Policy,CN=Query-Policies,CN=Directory Service,CN=Windows NT,CN=Services,CN=Configuration," + sambatest.BaseDN
	c := dc.Admin(t)
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 10, false, "(objectClass=*)",
		[]string{"lDAPAdminLimits"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("reading the query policy: %v", err)
	}
	old := res.Entries[0].GetAttributeValues("lDAPAdminLimits")
	var limits []string
	for _, l := range old {
		if !strings.HasPrefix(l, "MaxNotificationPerConn=") {
			limits = append(limits, l)
		}
	}
	limits = append(limits, fmt.Sprintf("MaxNotificationPerConn=%d", n))
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("lDAPAdminLimits", limits)
	if err := c.Modify(m); err != nil {
		t.Fatalf("setting MaxNotificationPerConn: %v", err)
	}
	t.Cleanup(func() {
		m := ldap.NewModifyRequest(dn, nil)
		m.Replace("lDAPAdminLimits", old)
		if err := dc.Admin(t).Modify(m); err != nil {
			t.Errorf("restoring lDAPAdminLimits: %v", err)
		}
	})
}

// A DC that refuses change notification (MaxNotificationPerConn 1, so the
// second search on a connection is refused; Samba reads 0 as no limit): the
// watcher says so in the log and polls uSNChanged, and a reset still
// arrives, within the poll interval.
func TestPollingFallback(t *testing.T) {
	e := newEnv(t)
	setNotificationLimit(t, e.dc, 1)
	logs := &sourcetest.LogBuffer{}
	s := e.source(t, func(c *Config) {
		c.PollInterval = 300 * time.Millisecond
		c.Log = slog.New(slog.NewTextHandler(logs, nil))
	})
	u := e.dc.AddUser(t, e.ou, "poll", sourcetest.Password())
	events := sourcetest.Events(t, s, nil, u.Name)
	sourcetest.WaitFor(t, "the polling fallback", func() bool { return s.Stats().Polling })
	if !strings.Contains(logs.String(), "change notification refused by the domain controller, polling uSNChanged") {
		t.Fatalf("the log does not say notification was refused:\n%s", logs)
	}
	e.dc.SetPassword(t, u.DN, sourcetest.Password(), true)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Account.MustChange {
				return // the reset (the first events are the catch-up's)
			}
		case <-deadline:
			t.Fatal("a reset was not reported by polling")
		}
	}
}

// While change notification works nothing is polled: an idle minute of
// watching costs no search (the benchmark measures it for 1,000 users).
func TestNoPollingWhileNotified(t *testing.T) {
	e := newEnv(t)
	s := e.source(t, nil)
	u := e.dc.AddUser(t, e.ou, "idle", sourcetest.Password())
	events := sourcetest.Events(t, s, nil, u.Name)
	sourcetest.WaitFor(t, "notification searches", func() bool { n, _ := s.watcher.state(); return n >= 2 })
	time.Sleep(500 * time.Millisecond) // the catch-up's searches end
	before := s.Stats()
	time.Sleep(3 * time.Second)
	after := s.Stats()
	if after.Searches != before.Searches || after.Binds != before.Binds || after.Polling {
		t.Fatalf("idle watching searched: %+v then %+v", before, after)
	}
	at := time.Now()
	e.dc.SetPassword(t, u.DN, sourcetest.Password(), false)
	select {
	case <-events:
		t.Logf("reset reported %v after the modify", time.Since(at).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("a reset was not reported")
	}
}

// A lost connection is re-established with backoff and followed by a
// catch-up by uSNChanged: a reset made while the watcher was cut off is
// reported once it is back.
func TestReconnectCatchUp(t *testing.T) {
	e := newEnv(t)
	p := tcpproxy.New(t, "127.0.0.1:636")
	s := e.source(t, func(c *Config) { c.URL = "ldaps://127.0.0.1:" + p.Port })
	u := e.dc.AddUser(t, e.ou, "cut", sourcetest.Password())
	events := sourcetest.Events(t, s, nil, u.Name)
	sourcetest.WaitFor(t, "notification searches", func() bool { n, _ := s.watcher.state(); return n >= 2 })
	p.Cut(true) // every connection dropped, new ones refused
	sourcetest.WaitFor(t, "the watcher to notice", func() bool { n, _ := s.watcher.state(); return n == 0 })
	e.dc.SetPassword(t, u.DN, sourcetest.Password(), true)
	quiet := time.After(1500 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case ev := <-events:
			if ev.Account.MustChange {
				t.Fatalf("the reset was reported while the watcher was cut off: %+v", ev)
			}
		case <-quiet:
			waiting = false
		}
	}
	p.Cut(false)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Account.MustChange {
				return
			}
		case <-deadline:
			t.Fatal("the reset made while cut off was not caught up")
		}
	}
}

// BenchmarkWatchIdle measures the LDAP load of watching 1,000 users while
// nothing changes: the searches, binds and connections the source makes
// in a minute of idle watching, after its start-up (the notification
// searches and the first catch-up). Run it as root with
//
//	go test ./directory/source/ad -run '^$' -bench WatchIdle -benchtime 1x
func BenchmarkWatchIdle(b *testing.B) {
	dc := sambatest.Need(b)
	ou := dc.NewOU(b)
	svc := dc.ServiceAccount(b, ou)
	c := dc.Admin(b)
	const users = 1000
	start := time.Now()
	for i := range users {
		a := ldap.NewAddRequest(fmt.Sprintf("CN=idle%04d,%s", i, ou), nil)
		a.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
		a.Attribute("sAMAccountName", []string{fmt.Sprintf("idle%04d-%s", i, strings.ToLower(ou[3:9]))})
		if err := c.Add(a); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d users added in %v", users, time.Since(start).Round(time.Millisecond))
	idle := time.Minute
	if v := os.Getenv("LOCKSTEP_IDLE"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			idle = d
		}
	}
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		s, err := New(ctx, Config{URL: sambatest.URL, CAFile: dc.CAFile, BaseDN: ou, BindDN: svc.DN, BindPassword: []byte(svc.Password)})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		var events atomic.Int64
		wctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		t0 := time.Now()
		go func() { done <- s.Watch(wctx, nil, func(source.Event) { events.Add(1) }) }()
		for s.Stats().Notifications < 2 || events.Load() < users {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Second)
		up := s.Stats()
		b.Logf("start-up: %v to watch %d users: %d notification searches open, %d searches, %d binds, %d connections, %d events",
			time.Since(t0).Round(time.Millisecond), users, up.Notifications, up.Searches, up.Binds, up.Dials, events.Load())
		time.Sleep(idle)
		after := s.Stats()
		perMin := func(n int64) float64 { return float64(n) / idle.Minutes() }
		b.Logf("idle %v: %.1f searches/min, %.1f binds/min, %.1f connections/min, polling %v",
			idle, perMin(after.Searches-up.Searches), perMin(after.Binds-up.Binds), perMin(after.Dials-up.Dials), after.Polling)
		b.ReportMetric(perMin(after.Searches-up.Searches), "idle-searches/min")
		stop()
		<-done
		s.Close()
	}
}
