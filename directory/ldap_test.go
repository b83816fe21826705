package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/source/ldap"
	"github.com/lockstep-dev/lockstep/directory/source/sourcetest"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/internal/tools/slapdtest"
	"github.com/lockstep-dev/lockstep/protocol"
)

// ldapFixture is an OU of the test's own in the tests' slapd, with a
// service account that may reset and unlock.
type ldapFixture struct {
	srv *slapdtest.Server
	ou  string
	svc slapdtest.User
}

func newLDAPFixture(t *testing.T) ldapFixture {
	t.Helper()
	srv := slapdtest.Need(t)
	ou := srv.NewOU(t)
	return ldapFixture{srv: srv, ou: ou, svc: srv.ServiceAccount(t, ou, true)}
}

func (f ldapFixture) source(t *testing.T) *ldap.Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := ldap.New(ctx, ldap.Config{URL: f.srv.URL, CAFile: f.srv.CAFile, BaseDN: f.ou, BindDN: f.svc.DN,
		BindPassword: []byte(f.svc.Password), PolicyDN: slapdtest.PolicyDN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Lockstep's own rules on top of ppolicy's: `policy set` adds a symbol and
// a longer minimum, which the Mac gets marked as Lockstep's, and the hub
// refuses a password without them before anything reaches slapd; the
// rules ppolicy holds (history) stay the directory's.
func TestLDAPOwnRulesOnTop(t *testing.T) {
	f := newLDAPFixture(t)
	e := newEnv(t, func(c *Config) { c.Source = f.source(t) })
	p := e.srv.Policy()
	if p.MinLength != slapdtest.MinLength || p.RequireSymbol || p.Lockstep != "" {
		t.Fatalf("before any rule of Lockstep's: %+v", p)
	}
	want := p
	want.MinLength, want.RequireSymbol = 16, true
	got, err := e.adm.SetPolicy(t.Context(), want)
	if err != nil {
		t.Fatal(err)
	}
	if got.MinLength != 16 || !got.RequireSymbol || got.HistoryCount != slapdtest.InHistory ||
		!got.IsLockstep(protocol.RuleMinLength) || !got.IsLockstep(protocol.RuleSymbol) || got.IsLockstep(protocol.RuleHistory) {
		t.Fatalf("with Lockstep's rules: %+v", got)
	}
	marked := 0
	for _, r := range got.Rules() {
		if r.Lockstep {
			marked++
		}
	}
	if marked != 2 {
		t.Fatalf("%d rules marked as Lockstep's, want 2: %+v", marked, got.Rules())
	}
	// The directory's own rules cannot be set here.
	bad := got
	bad.HistoryCount = 2
	if _, err := e.adm.SetPolicy(t.Context(), bad); !isCode(err, protocol.CodeUnsupported) || !strings.Contains(err.Error(), "pwdInHistory") {
		t.Fatalf("setting the history: %v", err)
	}
	bad = got
	bad.MinLength = 8
	if _, err := e.adm.SetPolicy(t.Context(), bad); !isCode(err, protocol.CodeUnsupported) || !strings.Contains(err.Error(), "pwdMinLength") {
		t.Fatalf("lowering the minimum: %v", err)
	}

	pw := sourcetest.Password()
	u := f.srv.AddUser(t, f.ou, "own", pw)
	a := e.connect(e.enroll(u.Name), 0)
	// Long enough for both minimums, without a symbol.
	noSymbol := "Abcdefgh12345678Zz"
	perr := a.fails(protocol.TypeChangePassword, "c1", change(u.Name, e.secret(pw), e.secret(noSymbol), ""), protocol.CodePolicyViolation)
	if !slices.ContainsFunc(perr.Violations, func(v protocol.Violation) bool { return v.Code == protocol.RuleSymbol }) {
		t.Fatalf("violations %+v lack Lockstep's symbol rule", perr.Violations)
	}
	if err := f.srv.Bind(u.DN, pw); err != nil {
		t.Fatalf("the refused change reached slapd: %v", err)
	}
	// A restart keeps them.
	var stored []byte
	_ = e.srv.st.View(t.Context(), func(tx store.Tx) error {
		var err error
		stored, err = tx.Setting(t.Context(), extraRulesSetting)
		return err
	})
	if !strings.Contains(string(stored), `"require_symbol":true`) {
		t.Fatalf("stored rules: %s", stored)
	}
}

// The sync cookie is kept in the store: after a watch event the hub holds
// a checkpoint, which the next start resumes from.
func TestLDAPCheckpointStored(t *testing.T) {
	f := newLDAPFixture(t)
	src := f.source(t)
	e := newEnv(t, func(c *Config) { c.Source = src })
	u := f.srv.AddUser(t, f.ou, "cp", sourcetest.Password())
	e.connect(e.enroll(u.Name), 0)
	sourcetest.WaitFor(t, "syncrepl", func() bool { return src.Stats().Syncing })
	read := func() []byte {
		var b []byte
		err := e.srv.st.View(t.Context(), func(tx store.Tx) error {
			var err error
			b, err = tx.Setting(t.Context(), "source_checkpoint:ldap")
			return err
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return b
	}
	sourcetest.WaitFor(t, "a checkpoint", func() bool { return len(read()) > 0 })
	first := string(read())
	f.srv.SetPassword(t, u.DN, sourcetest.Password(), true)
	sourcetest.WaitFor(t, "a newer checkpoint", func() bool { return string(read()) != first })
	if !strings.Contains(string(read()), "csn=") {
		t.Fatalf("the checkpoint holds no sync cookie: %q", read())
	}
}

// A device not bound to the user cannot lock the user out in LDAP: its
// wrong guesses stop reaching slapd (linking is blocked) two short of
// pwdMaxFailure.
func TestLDAPStrangersCannotLockTheUser(t *testing.T) {
	f := newLDAPFixture(t)
	e := newEnv(t, func(c *Config) { c.Source = f.source(t) })
	u := f.srv.AddUser(t, f.ou, "strg", sourcetest.Password())
	stranger := e.connect(e.enroll(), 0)
	for i := range 8 {
		stranger.fails(protocol.TypeVerifyPassword, "", verify(u.Name, e.secret(fmt.Sprintf("Wrong-Guess-%d-x!", i))), protocol.CodeWrongPassword)
	}
	if err := f.srv.Bind(u.DN, u.Password); err != nil {
		t.Fatalf("a stranger's guesses locked the user in slapd: %v", err)
	}
	if n := len(f.srv.Entry(t, u.DN, "pwdFailureTime").GetAttributeValues("pwdFailureTime")); n > slapdtest.MaxFailure-2 {
		t.Fatalf("%d of the stranger's guesses reached slapd", n)
	}
}

// Replicas on one PostgreSQL, each with its own LDAP source: Lockstep's
// own rules set through one are the policy of the other too.
func TestReplicasShareLDAPOwnRules(t *testing.T) {
	f := newLDAPFixture(t)
	rs := replicas(t, 2, func(c *Config) { c.Source = f.source(t) })
	want := rs[0].srv.Policy()
	want.RequireDigit = true
	if _, err := rs[0].adm.SetPolicy(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	sourcetest.WaitFor(t, "the other replica's policy", func() bool { return rs[1].srv.Policy().IsLockstep(protocol.RuleDigit) })
}
