package ldap

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	ldapv3 "github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/directory/source/sourcetest"
	"github.com/lockstep-dev/lockstep/internal/tools/slapdtest"
	"github.com/lockstep-dev/lockstep/internal/tools/tcpproxy"
	"github.com/lockstep-dev/lockstep/protocol"
)

func TestMain(m *testing.M) { slapdtest.Main(m) }

// env is a slapd with an OU of the test's own and a service account in it.
type env struct {
	srv *slapdtest.Server
	ou  string
	svc slapdtest.User
}

func newEnv(t *testing.T, admin bool) env {
	t.Helper()
	srv := slapdtest.Need(t)
	ou := srv.NewOU(t)
	return env{srv: srv, ou: ou, svc: srv.ServiceAccount(t, ou, admin)}
}

func (e env) config() Config {
	return Config{URL: e.srv.URL, CAFile: e.srv.CAFile, BaseDN: e.ou, BindDN: e.svc.DN, BindPassword: []byte(e.svc.Password),
		PolicyDN: slapdtest.PolicyDN, Timeout: 10 * time.Second}
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

// The conformance suite, against a real slapd with ppolicy and syncprov,
// with a service account that may reset and unlock; resets made elsewhere
// are an administrator's (the helpdesk's) LDAP modify.
func TestConformance(t *testing.T) {
	e := newEnv(t, true)
	s := e.source(t, nil)
	sourcetest.Run(t, sourcetest.Fixture{
		Source: s,
		NewUser: func(t *testing.T, password string) string {
			return e.srv.AddUser(t, e.ou, "u", password).Name
		},
		Elsewhere: func(t *testing.T, user, password string, temporary bool) {
			e.srv.SetPassword(t, "uid="+user+","+e.ou, password, temporary)
		},
		LockoutThreshold: slapdtest.MaxFailure,
	})
}

// A bind account that may only read: reset and unlock say which access it
// lacks, and nothing changes; verify and change (as the user) work.
func TestReadOnlyAccount(t *testing.T) {
	e := newEnv(t, false)
	s := e.source(t, nil)
	u := e.srv.AddUser(t, e.ou, "ro", sourcetest.Password())
	ctx := t.Context()
	_, err := s.Reset(ctx, u.Name, []byte(sourcetest.Password()), true, source.Hooks{})
	var np *source.NotPermittedError
	if !errors.As(err, &np) || !strings.Contains(np.Need, "userPassword") {
		t.Fatalf("Reset with a read-only account = %v, want a NotPermittedError naming userPassword", err)
	}
	if _, err := s.Unlock(ctx, u.Name, source.Hooks{}); !errors.As(err, &np) || !strings.Contains(np.Need, "pwdAccountLockedTime") {
		t.Fatalf("Unlock with a read-only account = %v, want a NotPermittedError naming pwdAccountLockedTime", err)
	}
	if err := e.srv.Bind(u.DN, u.Password); err != nil {
		t.Fatalf("the refused reset changed the password: %v", err)
	}
	a, err := s.Verify(ctx, u.Name, []byte(u.Password), source.Attempt{})
	if err != nil || a.Stamp == "" {
		t.Fatalf("Verify with a read-only account: %+v, %v", a, err)
	}
	nw := sourcetest.Password()
	b, err := s.Change(ctx, u.Name, []byte(u.Password), []byte(nw), source.Attempt{}, source.Hooks{})
	if err != nil {
		t.Fatalf("a change as the user needs no access of Lockstep's: %v", err)
	}
	if err := e.srv.Bind(u.DN, nw); err != nil {
		t.Fatalf("the new password does not bind: %v", err)
	}
	// Without userPassword and pwdHistory the stamp still moves (a change
	// a second later at least: pwdChangedTime's resolution).
	if b.Stamp == "" || b.ChangedAt.IsZero() {
		t.Fatalf("after the change: %+v", b)
	}
}

// The password policy control: a temporary password, an expired one with
// grace logins left and without, an expiry warning and a lock are told
// apart from a wrong password.
func TestPasswordPolicyControl(t *testing.T) {
	e := newEnv(t, true)
	s := e.source(t, nil)
	ctx := t.Context()

	tmp := e.srv.AddUser(t, e.ou, "tmp", sourcetest.Password())
	tmp.Password = sourcetest.Password()
	e.srv.SetPassword(t, tmp.DN, tmp.Password, true)
	a, err := s.Verify(ctx, tmp.Name, []byte(tmp.Password), source.Attempt{})
	if err != nil || !a.MustChange || a.Expired {
		t.Fatalf("changeAfterReset: %+v, %v", a, err)
	}

	exp := e.srv.AddUser(t, e.ou, "exp", sourcetest.Password())
	e.srv.SetChangedTime(t, exp.DN, time.Now().Add(-slapdtest.MaxAge-time.Hour))
	for left := slapdtest.GraceLogins - 1; left >= 0; left-- {
		a, err = s.Verify(ctx, exp.Name, []byte(exp.Password), source.Attempt{})
		if err != nil || !a.MustChange || !a.Expired || a.GraceLogins != left {
			t.Fatalf("expired with %d grace logins left: %+v, %v", left, a, err)
		}
		// The entry says the same (pwdGraceUseTime), for user show.
		if b, err := s.Account(ctx, exp.Name); err != nil || !b.Expired || b.GraceLogins != left {
			t.Fatalf("Account with %d grace logins left: %+v, %v", left, b, err)
		}
	}
	// No grace login left: the bind fails with passwordExpired, which is
	// still the right password.
	a, err = s.Verify(ctx, exp.Name, []byte(exp.Password), source.Attempt{})
	if err != nil || !a.MustChange || !a.Expired || a.GraceLogins != 0 {
		t.Fatalf("expired without grace: %+v, %v", a, err)
	}
	if _, err := s.Verify(ctx, exp.Name, []byte("Wrong-Pass-123!"), source.Attempt{}); !errors.Is(err, source.ErrWrongPassword) {
		t.Fatalf("a wrong password for an expired account = %v", err)
	}
	// The change works without a bind as the user (slapd checks the
	// current password given on Lockstep's connection).
	nw := sourcetest.Password()
	if a, err := s.Change(ctx, exp.Name, []byte(exp.Password), []byte(nw), source.Attempt{}, source.Hooks{}); err != nil || a.MustChange {
		t.Fatalf("changing an expired password: %+v, %v", a, err)
	}
	if err := e.srv.Bind(exp.DN, nw); err != nil {
		t.Fatalf("the new password does not bind: %v", err)
	}

	warn := e.srv.AddUser(t, e.ou, "warn", sourcetest.Password())
	e.srv.SetChangedTime(t, warn.DN, time.Now().Add(-slapdtest.MaxAge+5*24*time.Hour))
	a, err = s.Verify(ctx, warn.Name, []byte(warn.Password), source.Attempt{})
	if err != nil || a.MustChange || a.ExpiresAt == nil || a.ExpiresAt.Sub(time.Now()) > 6*24*time.Hour {
		t.Fatalf("expiry warning: %+v, %v", a, err)
	}

	lock := e.srv.AddUser(t, e.ou, "lock", sourcetest.Password())
	for i := range slapdtest.MaxFailure {
		_ = e.srv.Bind(lock.DN, "Wrong-Guess-"+string(rune('a'+i)))
	}
	_, err = s.Verify(ctx, lock.Name, []byte(lock.Password), source.Attempt{})
	var le *source.LockedError
	if !errors.As(err, &le) || le.Account.LockedUntil == nil || le.Account.LockedUntil.Sub(time.Now()) > slapdtest.LockoutDuration {
		t.Fatalf("accountLocked: %v", err)
	}
	// An administrator's reset ends the lock too (ppolicy removes
	// pwdAccountLockedTime with the new password).
	if a, err := s.Reset(ctx, lock.Name, []byte(sourcetest.Password()), false, source.Hooks{}); err != nil || a.Locked {
		t.Fatalf("a reset of a locked account: %+v, %v", a, err)
	}
}

// The policy: --ppolicy-dn's entry, else the one under the base DN; a
// user's pwdPolicySubentry is their own policy; ppolicy's settings map to
// Lockstep's rules.
func TestPolicies(t *testing.T) {
	e := newEnv(t, true)
	s := e.source(t, nil)
	p, err := s.Policy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := protocol.Policy{MinLength: slapdtest.MinLength, HistoryCount: slapdtest.InHistory, MaxAgeDays: 90, ExpiryWarningDays: 14}
	if p.Rules != want || p.LockoutThreshold != slapdtest.MaxFailure || p.LockoutDuration != slapdtest.LockoutDuration {
		t.Fatalf("policy %+v, want rules %+v, lockout %d for %v", p, want, slapdtest.MaxFailure, slapdtest.LockoutDuration)
	}

	// A policy of the OU's own, for one user.
	strict := "cn=strict," + e.ou
	add := ldapv3.NewAddRequest(strict, nil)
	add.Attribute("objectClass", []string{"device", "pwdPolicy"})
	add.Attribute("cn", []string{"strict"})
	for k, v := range map[string]string{"pwdAttribute": "userPassword", "pwdMinLength": "20", "pwdCheckQuality": "1", "pwdInHistory": "10",
		"pwdMaxFailure": "3", "pwdLockout": "TRUE", "pwdLockoutDuration": "0"} {
		add.Attribute(k, []string{v})
	}
	if err := e.srv.Root(t).Add(add); err != nil {
		t.Fatal(err)
	}
	u := e.srv.AddUser(t, e.ou, "fine", sourcetest.Password()+"-longer")
	m := ldapv3.NewModifyRequest(u.DN, nil)
	m.Replace("pwdPolicySubentry", []string{strict})
	if err := e.srv.Root(t).Modify(m); err != nil {
		t.Fatal(err)
	}
	a, err := s.Account(t.Context(), u.Name)
	if err != nil || a.Policy == nil || a.Policy.Name != "strict" || a.Policy.Rules.MinLength != 20 || a.Policy.Rules.HistoryCount != 10 ||
		a.Policy.LockoutThreshold != 3 || a.Policy.LockoutDuration != 0 {
		t.Fatalf("a user's own policy: %+v, %v", a.Policy, err)
	}
	if _, err := s.Change(t.Context(), u.Name, []byte(u.Password), []byte("Only-15-chars-x"), source.Attempt{}, source.Hooks{}); err == nil {
		t.Fatal("the user's own minimum length was not applied by the server")
	}

	// Without --ppolicy-dn: the one policy under the base DN (the OU
	// holds one: strict), or a clear error when there is none.
	s2 := e.source(t, func(c *Config) { c.PolicyDN = "" })
	if p, _ := s2.Policy(t.Context()); p.Rules.MinLength != 20 {
		t.Fatalf("the policy under the base DN: %+v", p)
	}
	other := e.srv.NewOU(t)
	cfg := e.config()
	cfg.BaseDN, cfg.PolicyDN = other, ""
	_, err = New(t.Context(), cfg)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "PolicyDN" || !strings.Contains(ce.Problem, "no pwdPolicy entry") {
		t.Fatalf("no policy under the base DN: %v", err)
	}
	cfg.PolicyDN = "cn=nowhere," + slapdtest.BaseDN
	if _, err = New(t.Context(), cfg); !errors.As(err, &ce) || ce.Field != "PolicyDN" {
		t.Fatalf("a --ppolicy-dn that is no policy: %v", err)
	}
}

// The sync cookie: a watch that starts from the last checkpoint reports
// only what changed since (one user of two), not every user; a checkpoint
// of another scope is not used.
func TestWatchResumesFromCheckpoint(t *testing.T) {
	e := newEnv(t, true)
	s := e.source(t, nil)
	a := e.srv.AddUser(t, e.ou, "a", sourcetest.Password())
	b := e.srv.AddUser(t, e.ou, "b", sourcetest.Password())
	ctx, cancel := context.WithCancel(t.Context())
	var last []byte
	seen := map[string]bool{}
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(ctx, nil, func(ev source.Event) {
			if ev.Checkpoint != nil {
				last = ev.Checkpoint
			}
			seen[ev.User] = true
		})
	}()
	sourcetest.WaitFor(t, "the first refresh", func() bool { return s.Stats().Syncing })
	cancel()
	<-done
	if !seen[a.Name] || !seen[b.Name] || last == nil {
		t.Fatalf("the first refresh: users %v, checkpoint %q", seen, last)
	}
	// While nobody watches: a's password is reset.
	e.srv.SetPassword(t, a.DN, sourcetest.Password(), true)
	events := sourcetest.Events(t, s, last, "")
	deadline := time.After(20 * time.Second)
	var gotA bool
	for !gotA {
		select {
		case ev := <-events:
			if ev.User == b.Name || ev.User == e.svc.Name {
				t.Fatalf("the resumed watch reported %s, which did not change", ev.User)
			}
			if ev.User == a.Name && ev.Account.MustChange {
				gotA = true
			}
		case <-deadline:
			t.Fatal("the reset made while nobody watched was not replayed")
		}
	}
	// Another scope's checkpoint (another base DN): a full refresh.
	s2 := e.source(t, func(c *Config) { c.UserFilter = "(objectClass=inetOrgPerson)" })
	all := sourcetest.Events(t, s2, last, b.Name)
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		t.Fatal("a checkpoint of another scope was used: b was not reported")
	}
}

// A server without syncprov: the log says so at start and the watcher
// polls pwdChangedTime; a reset still arrives, within the poll interval.
func TestPollingWithoutSyncprov(t *testing.T) {
	srv := slapdtest.Start(t, false)
	ou := srv.NewOU(t)
	svc := srv.ServiceAccount(t, ou, true)
	logs := &sourcetest.LogBuffer{}
	s, err := New(t.Context(), Config{URL: srv.URL, CAFile: srv.CAFile, BaseDN: ou, BindDN: svc.DN, BindPassword: []byte(svc.Password),
		PolicyDN: slapdtest.PolicyDN, PollInterval: 300 * time.Millisecond, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.Contains(logs.String(), "no syncprov on the LDAP server (no syncrepl): polling pwdChangedTime") {
		t.Fatalf("the log does not say there is no syncprov:\n%s", logs)
	}
	u := srv.AddUser(t, ou, "poll", sourcetest.Password())
	events := sourcetest.Events(t, s, nil, u.Name)
	sourcetest.WaitFor(t, "polling", func() bool { return s.Stats().Polling })
	<-events // the first poll's report
	srv.SetPassword(t, u.DN, sourcetest.Password(), true)
	for deadline := time.After(10 * time.Second); ; {
		select {
		case ev := <-events:
			if ev.Account.MustChange {
				// A lockout is seen by polling too (pwdAccountLockedTime).
				for i := range slapdtest.MaxFailure {
					_ = srv.Bind(u.DN, "Wrong-Guess-"+string(rune('a'+i)))
				}
				for {
					select {
					case ev := <-events:
						if ev.Account.Locked {
							return
						}
					case <-deadline:
						t.Fatal("a lockout was not reported by polling")
					}
				}
			}
		case <-deadline:
			t.Fatal("a reset was not reported by polling")
		}
	}
}

// A lost connection: the syncrepl search starts again from its cookie,
// with backoff; a reset made while the watcher was cut off is reported
// once it is back.
func TestReconnectReplays(t *testing.T) {
	e := newEnv(t, true)
	p := tcpproxy.New(t, strings.TrimPrefix(e.srv.URL, "ldaps://"))
	s := e.source(t, func(c *Config) { c.URL = "ldaps://127.0.0.1:" + p.Port })
	u := e.srv.AddUser(t, e.ou, "cut", sourcetest.Password())
	events := sourcetest.Events(t, s, nil, u.Name)
	sourcetest.WaitFor(t, "syncrepl", func() bool { return s.Stats().Syncing })
	p.Cut(true)
	sourcetest.WaitFor(t, "the watcher to notice", func() bool { return !s.Stats().Syncing })
	e.srv.SetPassword(t, u.DN, sourcetest.Password(), true)
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
	for deadline := time.After(30 * time.Second); ; {
		select {
		case ev := <-events:
			if ev.Account.MustChange {
				return
			}
		case <-deadline:
			t.Fatal("the reset made while cut off was not replayed")
		}
	}
}

// A policy changed on the server is reported as a policy event.
func TestPolicyChangeReported(t *testing.T) {
	e := newEnv(t, true)
	pol := "cn=own," + e.ou
	add := ldapv3.NewAddRequest(pol, nil)
	add.Attribute("objectClass", []string{"device", "pwdPolicy"})
	add.Attribute("cn", []string{"own"})
	add.Attribute("pwdAttribute", []string{"userPassword"})
	add.Attribute("pwdMinLength", []string{"12"})
	add.Attribute("pwdCheckQuality", []string{"1"})
	if err := e.srv.Root(t).Add(add); err != nil {
		t.Fatal(err)
	}
	s := e.source(t, func(c *Config) { c.PolicyDN = pol })
	events := sourcetest.Events(t, s, nil, "")
	sourcetest.WaitFor(t, "syncrepl", func() bool { return s.Stats().Syncing })
	m := ldapv3.NewModifyRequest(pol, nil)
	m.Replace("pwdMinLength", []string{"16"})
	if err := e.srv.Root(t).Modify(m); err != nil {
		t.Fatal(err)
	}
	for deadline := time.After(20 * time.Second); ; {
		select {
		case ev := <-events:
			if ev.Policy {
				if p, _ := s.Policy(t.Context()); p.Rules.MinLength != 16 {
					t.Fatalf("after the policy event: %+v", p)
				}
				return
			}
		case <-deadline:
			t.Fatal("a policy change was not reported")
		}
	}
}
