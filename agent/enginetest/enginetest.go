// Package enginetest holds in-memory stand-ins for the Mac and the
// directory that the engine drives: the engine's own tests use them to test
// its decisions quickly and exhaustively, and agenttest puts them under a
// real lockstepd for the app's and the CLI's tests. The platform code itself
// is tested against the macOS simulator, which behaves as macOS does; these
// fakes behave as the engine's interfaces promise.
//
// Their fields are the state of the fake world. Hold the fake's lock (Lock,
// Unlock) to read or change them while an engine is running.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// Passwords the fakes start with.
const (
	OldPassword = "Old-Passw0rd!"
	Code        = "123456" // the authenticator code the directory accepts
)

// Mac is an in-memory Mac: local accounts, login keychains, FileVault and
// the service account.
type Mac struct {
	sync.Mutex
	// Local holds each account's password; an account exists when it has
	// an entry.
	Local map[string]string
	// Keychain holds what opens each login keychain ("" = no keychain).
	Keychain map[string]string
	// Moved lists the keychains moved aside, "path=password".
	Moved []string
	// Aside are the kept keychains (what MoveAside moved, and any a test
	// puts there), with what opens each; SearchList is each user's keychain
	// search list beyond the login keychain, and Unlocked what was unlocked
	// in the user's session.
	Aside      []Aside
	SearchList map[string][]string
	Unlocked   []string
	// Unlisted are the users whose search list lacks the login keychain;
	// Create and LoginInSearchList put it back.
	Unlisted map[string]bool
	// Token says who holds a SecureToken.
	Token map[string]bool
	// FileVaultOn and FileVaultUsers are FileVault's state.
	FileVaultOn    bool
	FileVaultUsers map[string]bool
	// Preboots counts Preboot refreshes.
	Preboots int
	// ServiceUsable makes the service account present and working.
	ServiceUsable bool
	// Fail makes the named operation (verify, change, rekey, preboot)
	// fail once with the error.
	Fail map[string]error
	// FailedLogins counts Verify and Change calls with a wrong password:
	// each is a failed login on a real Mac.
	FailedLogins int
	// Rules are the Mac's own password rules.
	Rules []protocol.LocalRule
	// LastSet is each account's passwordLastSetTime.
	LastSet map[string]float64
	// EditAccount edits what Lookup returns (a mobile account, ...).
	EditAccount func(*engine.LocalAccount)
	// UIDs maps uids to account names for LookupUID (default: 501 is
	// alice).
	UIDs map[int]string
	// Before, when set, is called (without the lock) as each operation
	// that changes or checks a password starts: verify, change, rekey,
	// move_aside, create, preboot, reset. A test can hold an operation
	// there to look at it half-way.
	Before func(op string)
}

func (m *Mac) before(op string) {
	m.Lock()
	f := m.Before
	m.Unlock()
	if f != nil {
		f(op)
	}
}

// NewMac returns a Mac with one account, alice, whose Mac password, login
// keychain and FileVault all take OldPassword, with a SecureToken and a
// working service account.
func NewMac() *Mac {
	return &Mac{
		Local: map[string]string{"alice": OldPassword}, Keychain: map[string]string{"alice": OldPassword},
		Token: map[string]bool{"alice": true}, FileVaultOn: true, FileVaultUsers: map[string]bool{"alice": true},
		ServiceUsable: true, Fail: map[string]error{}, LastSet: map[string]float64{"alice": 1},
		UIDs: map[int]string{501: "alice"},
	}
}

// Platform is the Mac as the engine takes it.
func (m *Mac) Platform() engine.Mac {
	return engine.Mac{Accounts: m, Keychain: m, FileVault: m, Service: m}
}

func (m *Mac) failing(op string) error {
	if err, ok := m.Fail[op]; ok {
		delete(m.Fail, op)
		return err
	}
	return nil
}

// Lookup implements engine.Accounts.
func (m *Mac) Lookup(_ context.Context, name string) (engine.LocalAccount, error) {
	m.Lock()
	defer m.Unlock()
	if _, ok := m.Local[name]; !ok {
		return engine.LocalAccount{}, engine.ErrNoSuchUser
	}
	uid := 501
	for u, n := range m.UIDs {
		if n == name {
			uid = u
		}
	}
	a := engine.LocalAccount{Name: name, UID: uid, GID: 20, Home: "/Users/" + name, SecureToken: m.Token[name], PasswordLastSet: m.LastSet[name]}
	if m.EditAccount != nil {
		m.EditAccount(&a)
	}
	return a, nil
}

// LookupUID implements engine.Accounts.
func (m *Mac) LookupUID(_ context.Context, uid int) (string, error) {
	m.Lock()
	defer m.Unlock()
	if n, ok := m.UIDs[uid]; ok {
		return n, nil
	}
	return "", engine.ErrNoSuchUser
}

// Verify implements engine.Accounts.
func (m *Mac) Verify(_ context.Context, name string, pw []byte) error {
	m.before("verify")
	m.Lock()
	defer m.Unlock()
	if err := m.failing("verify"); err != nil {
		return err
	}
	if m.Local[name] != string(pw) {
		m.FailedLogins++
		return engine.ErrWrongPassword
	}
	return nil
}

// Change implements engine.Accounts.
func (m *Mac) Change(_ context.Context, a engine.LocalAccount, old, new []byte) (engine.Verified, error) {
	m.before("change")
	m.Lock()
	defer m.Unlock()
	if err := m.failing("change"); err != nil {
		return engine.Verified{}, err
	}
	if m.Local[a.Name] != string(old) {
		m.FailedLogins++
		return engine.Verified{}, engine.ErrWrongPassword
	}
	m.Local[a.Name] = string(new)
	m.LastSet[a.Name]++
	return engine.Verified{SecureToken: m.Token[a.Name]}, nil
}

// PasswordRules implements engine.Accounts.
func (m *Mac) PasswordRules(context.Context, string) ([]protocol.LocalRule, error) {
	m.Lock()
	defer m.Unlock()
	return m.Rules, nil
}

// Exists implements engine.Keychain.
func (m *Mac) Exists(a engine.LocalAccount) (bool, error) {
	m.Lock()
	defer m.Unlock()
	return m.Keychain[a.Name] != "", nil
}

// Opens implements engine.Keychain.
func (m *Mac) Opens(_ context.Context, a engine.LocalAccount, pw []byte) (bool, error) {
	m.Lock()
	defer m.Unlock()
	return m.Keychain[a.Name] == string(pw), nil
}

// Rekey implements engine.Keychain.
func (m *Mac) Rekey(_ context.Context, a engine.LocalAccount, old, new []byte) error {
	m.before("rekey")
	m.Lock()
	defer m.Unlock()
	if err := m.failing("rekey"); err != nil {
		return err
	}
	if m.Keychain[a.Name] != string(old) {
		return engine.ErrWrongPassword
	}
	m.Keychain[a.Name] = string(new)
	return nil
}

// MoveAside implements engine.Keychain.
func (m *Mac) MoveAside(_ context.Context, a engine.LocalAccount) (engine.Moved, error) {
	m.before("move_aside")
	m.Lock()
	defer m.Unlock()
	p := fmt.Sprintf("/Users/%s/Library/Keychains/login_renamed_%d.keychain-db", a.Name, len(m.Moved)+1)
	m.Moved = append(m.Moved, p+"="+m.Keychain[a.Name])
	m.Aside = append(m.Aside, Aside{User: a.Name, Path: p, Password: m.Keychain[a.Name], At: time.Now().UTC()})
	m.Keychain[a.Name] = ""
	return engine.Moved{Login: p}, nil
}

// Create implements engine.Keychain: the keychain is made, then listed;
// Fail["login_search_list"] fails the listing.
func (m *Mac) Create(_ context.Context, a engine.LocalAccount, pw []byte) error {
	m.before("create")
	m.Lock()
	defer m.Unlock()
	m.Keychain[a.Name] = string(pw)
	_, err := m.listLogin(a)
	return err
}

// LoginInSearchList implements engine.Keychain.
func (m *Mac) LoginInSearchList(_ context.Context, a engine.LocalAccount) (bool, error) {
	m.before("login_search_list")
	m.Lock()
	defer m.Unlock()
	return m.listLogin(a)
}

func (m *Mac) listLogin(a engine.LocalAccount) (bool, error) {
	if err := m.failing("login_search_list"); err != nil {
		return false, err
	}
	was := m.Unlisted[a.Name]
	delete(m.Unlisted, a.Name)
	return was, nil
}

// Aside is a kept keychain of the fake Mac.
type Aside struct {
	User, Path, Password string
	At                   time.Time
}

func (m *Mac) aside(user, name string) *Aside {
	for i := range m.Aside {
		if a := &m.Aside[i]; a.User == user && filepath.Base(a.Path) == name {
			return a
		}
	}
	return nil
}

// Kept implements engine.Keychain: newest first.
func (m *Mac) Kept(a engine.LocalAccount) ([]engine.KeptKeychain, error) {
	m.Lock()
	defer m.Unlock()
	var out []engine.KeptKeychain
	for i := len(m.Aside) - 1; i >= 0; i-- {
		if x := m.Aside[i]; x.User == a.Name {
			out = append(out, engine.KeptKeychain{Name: filepath.Base(x.Path), Path: x.Path, KeptAt: x.At})
		}
	}
	return out, nil
}

// OpensKept implements engine.Keychain.
func (m *Mac) OpensKept(_ context.Context, a engine.LocalAccount, name string, pw []byte) (bool, error) {
	m.Lock()
	defer m.Unlock()
	x := m.aside(a.Name, name)
	if x == nil {
		return false, engine.ErrNoSuchUser
	}
	return x.Password == string(pw), nil
}

// RekeyKept implements engine.Keychain.
func (m *Mac) RekeyKept(_ context.Context, a engine.LocalAccount, name string, old, new []byte) error {
	m.before("rekey_kept")
	m.Lock()
	defer m.Unlock()
	if err := m.failing("rekey_kept"); err != nil {
		return err
	}
	x := m.aside(a.Name, name)
	switch {
	case x == nil:
		return fmt.Errorf("no kept keychain %s", name)
	case x.Password != string(old):
		return engine.ErrWrongPassword
	}
	x.Password = string(new)
	return nil
}

// AddToSearchList implements engine.Keychain.
func (m *Mac) AddToSearchList(_ context.Context, a engine.LocalAccount, name string) (bool, error) {
	m.before("search_list")
	m.Lock()
	defer m.Unlock()
	if err := m.failing("search_list"); err != nil {
		return false, err
	}
	x := m.aside(a.Name, name)
	if x == nil {
		return false, fmt.Errorf("no kept keychain %s", name)
	}
	if slices.Contains(m.SearchList[a.Name], x.Path) {
		return false, nil
	}
	if m.SearchList == nil {
		m.SearchList = map[string][]string{}
	}
	m.SearchList[a.Name] = append(m.SearchList[a.Name], x.Path)
	return true, nil
}

// UnlockForUser implements engine.Keychain.
func (m *Mac) UnlockForUser(_ context.Context, a engine.LocalAccount, name string, pw []byte) error {
	m.Lock()
	defer m.Unlock()
	if err := m.failing("unlock"); err != nil {
		return err
	}
	x := m.aside(a.Name, name)
	if x == nil || x.Password != string(pw) {
		return fmt.Errorf("unlock %s: wrong password", name)
	}
	m.Unlocked = append(m.Unlocked, x.Path)
	return nil
}

// Active implements engine.FileVault.
func (m *Mac) Active(context.Context) (bool, error) {
	m.Lock()
	defer m.Unlock()
	return m.FileVaultOn, nil
}

// IsUser implements engine.FileVault.
func (m *Mac) IsUser(_ context.Context, n string) (bool, error) {
	m.Lock()
	defer m.Unlock()
	return m.FileVaultUsers[n], nil
}

// SecureToken implements engine.FileVault.
func (m *Mac) SecureToken(_ context.Context, n string) (bool, error) {
	m.Lock()
	defer m.Unlock()
	return m.Token[n], nil
}

// RefreshPreboot implements engine.FileVault.
func (m *Mac) RefreshPreboot(context.Context) error {
	m.before("preboot")
	m.Lock()
	defer m.Unlock()
	if err := m.failing("preboot"); err != nil {
		return err
	}
	m.Preboots++
	return nil
}

// Status implements engine.ServiceAccount.
func (m *Mac) Status(context.Context) engine.ServiceStatus {
	m.Lock()
	defer m.Unlock()
	st := engine.ServiceStatus{Present: m.ServiceUsable, SecureToken: m.ServiceUsable, Usable: m.ServiceUsable}
	if !m.ServiceUsable {
		st.Problem = codes.ServiceNotSetUp
	}
	return st
}

// Setup implements engine.ServiceAccount.
func (m *Mac) Setup(context.Context, string, []byte) error {
	m.Lock()
	defer m.Unlock()
	m.ServiceUsable = true
	return nil
}

// Rotate implements engine.ServiceAccount.
func (m *Mac) Rotate(context.Context) error { return nil }

// Remove implements engine.ServiceAccount.
func (m *Mac) Remove(context.Context) error {
	m.Lock()
	defer m.Unlock()
	m.ServiceUsable = false
	return nil
}

// Reset implements engine.ServiceAccount: authorised by a token holder, so
// the user's token is kept.
func (m *Mac) Reset(_ context.Context, a engine.LocalAccount, pw []byte) (engine.Verified, error) {
	m.before("reset")
	m.Lock()
	defer m.Unlock()
	m.Local[a.Name] = string(pw)
	m.LastSet[a.Name]++
	return engine.Verified{SecureToken: m.Token[a.Name]}, nil
}

// Directory is an in-memory directory: passwords, account states, the
// policy, one-time codes and idempotent changes.
type Directory struct {
	sync.Mutex
	Online bool
	// Passwords and States are each user's.
	Passwords map[string]string
	States    map[string]protocol.AccountState
	// PolicyOf is the policy the directory announces.
	PolicyOf protocol.Policy
	// Codes are the authenticator codes accepted (each once).
	Codes map[string]bool
	// FailNext makes the next change fail with the error.
	FailNext error
	// Acks lists the versions acknowledged.
	Acks []int64
	// Verifies counts password verifications.
	Verifies int
	// Proof makes get_account answer not_bound for a user until the user's
	// password was given (verify or change), as the directory does.
	Proof bool
	Bound map[string]bool
	// Now is the directory's clock (default time.Now).
	Now func() time.Time

	// EnrollSecret is the base32 TOTP secret an enrolment begun hands out
	// (default EnrollSecret, fixed so that screenshots of the QR code are
	// stable); Enrolled is a user's secret once confirmed.
	EnrollSecret string
	Enrolled     map[string]string
	// Places are the place reports received, by user, newest last.
	Places map[string][][]protocol.PlaceReport

	results map[string]protocol.AccountState // idempotency
	used    map[string]bool
	pending map[string]string // begun enrolments' secrets
}

// EnrollSecret is the test directory's enrolment secret (RFC 4226's
// example key, "12345678901234567890", in base32).
const EnrollSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

// NewDirectory returns a directory that knows alice, with OldPassword,
// password version 1, MFA on and the default policy.
func NewDirectory() *Directory {
	return &Directory{Online: true, Passwords: map[string]string{"alice": OldPassword},
		States:   map[string]protocol.AccountState{"alice": {User: "alice", PasswordVersion: 1, MFA: true}},
		PolicyOf: protocol.DefaultPolicy(), Codes: map[string]bool{Code: true},
		results: map[string]protocol.AccountState{}, used: map[string]bool{}, Bound: map[string]bool{},
		Enrolled: map[string]string{}, Places: map[string][][]protocol.PlaceReport{}, pending: map[string]string{}}
}

// totpOK checks code against u's enrolled secret at the directory's time.
func (d *Directory) totpOK(u, code string) bool {
	secret, ok := d.Enrolled[u]
	if !ok {
		return false
	}
	ok, _ = totp.ValidateCustom(code, secret, d.now(), totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	return ok
}

// ResetMFA is an administrator's MFA reset with an enrolment period ending
// at until; it returns the push the directory sends.
func (d *Directory) ResetMFA(u string, until time.Time) protocol.MFAEnrollment {
	d.Lock()
	defer d.Unlock()
	st := d.States[u]
	st.MFA = true
	until = until.UTC()
	st.MFAEnrollBy = &until
	d.States[u] = st
	delete(d.Enrolled, u)
	return protocol.MFAEnrollment{User: u, Required: true, Until: &until, MFA: true}
}

// BeginMFAEnrollment implements engine.Directory.
func (d *Directory) BeginMFAEnrollment(_ context.Context, u string) (protocol.MFAEnrollmentKey, error) {
	d.Lock()
	defer d.Unlock()
	if !d.Online {
		return protocol.MFAEnrollmentKey{}, errOffline
	}
	st := d.States[u]
	if st.MFAEnrollBy == nil {
		return protocol.MFAEnrollmentKey{}, protocol.Errorf(protocol.CodeMFANotEnrolling, "not enrolling")
	}
	if !d.now().Before(*st.MFAEnrollBy) {
		return protocol.MFAEnrollmentKey{}, protocol.Errorf(protocol.CodeMFAEnrollmentExpired, "period over")
	}
	secret := d.EnrollSecret
	if secret == "" {
		secret = EnrollSecret
	}
	d.pending[u] = secret
	q := url.Values{"secret": {secret}, "issuer": {"Lockstep"}, "period": {"30"}, "digits": {"6"}, "algorithm": {"SHA1"}}
	uri := "otpauth://totp/Lockstep:" + url.PathEscape(u) + "?" + q.Encode()
	return protocol.MFAEnrollmentKey{Secret: protocol.Secret(secret), URI: protocol.Secret(uri), Until: *st.MFAEnrollBy}, nil
}

// ConfirmMFAEnrollment implements engine.Directory.
func (d *Directory) ConfirmMFAEnrollment(_ context.Context, key, u, code string) (protocol.AccountState, error) {
	d.Lock()
	defer d.Unlock()
	if !d.Online {
		return protocol.AccountState{}, errOffline
	}
	if st, ok := d.results[key]; ok {
		return st, nil
	}
	secret, ok := d.pending[u]
	if !ok {
		return protocol.AccountState{}, protocol.Errorf(protocol.CodeMFANotEnrolling, "not begun")
	}
	if ok, _ := totp.ValidateCustom(code, secret, d.now(), totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}); !ok || d.used[code] {
		return protocol.AccountState{}, protocol.Errorf(protocol.CodeMFAInvalid, "bad code")
	}
	d.used[code] = true
	delete(d.pending, u)
	d.Enrolled[u] = secret
	st := d.States[u]
	st.MFA, st.MFAEnrollBy = true, nil
	d.States[u] = st
	d.results[key] = st
	return st, nil
}

// ReportPlaces implements engine.Directory.
func (d *Directory) ReportPlaces(_ context.Context, u string, ps []protocol.PlaceReport) error {
	d.Lock()
	defer d.Unlock()
	if !d.Online {
		return errOffline
	}
	d.Places[u] = append(d.Places[u], ps)
	return nil
}

// LastPlaces is the newest place report for u (nil before the first).
func (d *Directory) LastPlaces(u string) []protocol.PlaceReport {
	d.Lock()
	defer d.Unlock()
	if n := len(d.Places[u]); n > 0 {
		return d.Places[u][n-1]
	}
	return nil
}

func (d *Directory) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Connected implements engine.Directory.
func (d *Directory) Connected() bool { d.Lock(); defer d.Unlock(); return d.Online }

// Policy implements engine.Directory.
func (d *Directory) Policy() protocol.Policy { d.Lock(); defer d.Unlock(); return d.PolicyOf }

// errOffline is what a request gets from a directory that is down.
var errOffline = errors.New("enginetest: the directory is offline")

// VerifyPassword implements engine.Directory.
func (d *Directory) VerifyPassword(_ context.Context, u string, pw protocol.Secret) (protocol.AccountState, error) {
	d.Lock()
	defer d.Unlock()
	if !d.Online {
		return protocol.AccountState{}, errOffline
	}
	d.Verifies++
	if st := d.States[u]; st.Locked {
		return protocol.AccountState{}, &protocol.Error{Code: protocol.CodeLocked, Message: "locked", LockedUntil: st.LockedUntil}
	}
	if d.Passwords[u] != string(pw) {
		return protocol.AccountState{}, protocol.Errorf(protocol.CodeWrongPassword, "wrong")
	}
	d.Bound[u] = true
	return d.States[u], nil
}

// ChangePassword implements engine.Directory.
func (d *Directory) ChangePassword(_ context.Context, key string, r protocol.ChangePasswordRequest) (protocol.AccountState, error) {
	d.Lock()
	defer d.Unlock()
	if !d.Online {
		return protocol.AccountState{}, errOffline
	}
	if err := d.FailNext; err != nil {
		d.FailNext = nil
		return protocol.AccountState{}, err
	}
	if st, ok := d.results[key]; ok {
		return st, nil
	}
	st := d.States[r.User]
	if st.Locked {
		return protocol.AccountState{}, &protocol.Error{Code: protocol.CodeLocked, Message: "locked", LockedUntil: st.LockedUntil}
	}
	if d.Passwords[r.User] != string(r.Current) {
		return protocol.AccountState{}, protocol.Errorf(protocol.CodeWrongPassword, "wrong")
	}
	if st.MFACodeNeeded() {
		switch {
		case r.TOTP == "":
			return protocol.AccountState{}, protocol.Errorf(protocol.CodeMFARequired, "code required")
		case d.used[r.TOTP]:
			return protocol.AccountState{}, protocol.Errorf(protocol.CodeMFAReplayed, "code used")
		case !d.Codes[r.TOTP] && !d.totpOK(r.User, r.TOTP):
			return protocol.AccountState{}, protocol.Errorf(protocol.CodeMFAInvalid, "bad code")
		}
		d.used[r.TOTP] = true
	}
	if v := d.PolicyOf.Check(r.User, r.New); len(v) > 0 {
		return protocol.AccountState{}, &protocol.Error{Code: protocol.CodePolicyViolation, Message: "policy", Violations: v}
	}
	d.Passwords[r.User] = string(r.New)
	d.Bound[r.User] = true
	st.PasswordVersion++
	st.MustChange = false
	st.PasswordChangedAt = d.now().UTC()
	d.expires(&st)
	d.States[r.User] = st
	d.results[key] = st
	return st, nil
}

// expires sets when st's password expires: the policy's maximum age after
// it was set, by a change or a reset, as the directory does.
func (d *Directory) expires(st *protocol.AccountState) {
	if d.PolicyOf.MaxAgeDays > 0 {
		exp := st.PasswordChangedAt.Add(time.Duration(d.PolicyOf.MaxAgeDays) * 24 * time.Hour)
		st.ExpiresAt = &exp
	}
}

// GetAccount implements engine.Directory.
func (d *Directory) GetAccount(_ context.Context, u, _ string) (protocol.AccountState, error) {
	d.Lock()
	defer d.Unlock()
	if !d.Online {
		return protocol.AccountState{}, errOffline
	}
	if d.Proof && !d.Bound[u] {
		return protocol.AccountState{}, protocol.Errorf(protocol.CodeNotBound, "not bound")
	}
	st, ok := d.States[u]
	if !ok {
		return protocol.AccountState{}, protocol.Errorf(protocol.CodeUnknownUser, "no such user")
	}
	return st, nil
}

// AckSync implements engine.Directory.
func (d *Directory) AckSync(_ context.Context, _, _ string, v int64) error {
	d.Lock()
	defer d.Unlock()
	if !d.Online {
		return errOffline
	}
	d.Acks = append(d.Acks, v)
	return nil
}

// Reset is what an administrator does in the directory: it sets u's
// password and returns the push the directory sends.
func (d *Directory) Reset(u, pw string, temporary bool) protocol.PasswordReset {
	d.Lock()
	defer d.Unlock()
	d.Passwords[u] = pw
	st := d.States[u]
	st.PasswordVersion++
	st.MustChange = temporary
	st.PasswordChangedAt = d.now().UTC()
	d.expires(&st)
	d.States[u] = st
	return protocol.PasswordReset{User: u, Temporary: temporary, PasswordVersion: st.PasswordVersion, At: st.PasswordChangedAt}
}

// LockUser locks u in the directory until the time given, and returns the push
// the directory sends.
func (d *Directory) LockUser(u string, until time.Time) protocol.AccountLocked {
	d.Lock()
	defer d.Unlock()
	st := d.States[u]
	st.Locked, st.LockedUntil = true, &until
	d.States[u] = st
	return protocol.AccountLocked{User: u, Until: until}
}
