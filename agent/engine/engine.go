// Package engine is lockstepd's sync engine: it runs every password change
// and sync, one at a time per account, as a journal of idempotent steps that
// each observe before they act, and keeps each account's state (in sync,
// sync needed, temporary, expiring, locked) from the directory's pushes and
// its own operations.
//
// The rule it lives by: a crash or failure at any point ends in one of two
// states, in sync or "sync needed", and "sync needed" is resolved by the
// normal sync flow. Nothing is left half-done silently, and a keychain is
// never deleted.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/agent/atomicfile"
	"github.com/lockstep-dev/lockstep/agent/journal"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// Errors the platform adapter maps the Mac's failures to.
var (
	ErrWrongPassword   = errors.New("wrong password")
	ErrAccountDisabled = errors.New("account disabled")
	ErrPolicyRefused   = errors.New("refused by the Mac's password policy")
	ErrNoSuchUser      = errors.New("no such local account")
	ErrNoSecureToken   = errors.New("no SecureToken")
	// ErrMustChange: the password is right, but the Mac requires it to be
	// changed (an expired local password).
	ErrMustChange = errors.New("password right but must be changed")
)

// LocalAccount is what the engine needs to know of a Mac account, read
// once per operation and passed down to every step.
type LocalAccount struct {
	Name         string
	UID, GID     int
	Home         string
	RealName     string
	GeneratedUID string
	SecureToken  bool
	Disabled     bool
	// Mobile: cached from a network directory (Active Directory and the
	// like), which owns its password.
	Mobile           bool
	OriginalNodeName string
	// NetworkHome: the home, and so the keychain, is not on this Mac.
	NetworkHome bool
	// PasswordLastSet is when the Mac says the password last changed
	// (seconds since 1970; 0 when unknown). Comparing it before and after
	// an interrupted change tells whether the change happened without
	// trying a password.
	PasswordLastSet float64
}

// Verified is what the Mac observed after a change or reset of the local
// password (the new password authenticates, or the call fails).
type Verified struct {
	// SecureToken: the account still holds an ENABLED SecureToken, so
	// FileVault follows the new password.
	SecureToken bool
}

// Accounts is the Mac's local account store.
type Accounts interface {
	Lookup(ctx context.Context, name string) (LocalAccount, error)
	LookupUID(ctx context.Context, uid int) (string, error)
	// Verify authenticates name with password: a login the Mac counts when
	// the password is wrong, so the engine only calls it with a password it
	// expects to be right.
	Verify(ctx context.Context, name string, password []byte) error
	// Change changes the password with the old one, which keeps the
	// SecureToken and FileVault in step, and verifies the result.
	Change(ctx context.Context, a LocalAccount, old, new []byte) (Verified, error)
	// PasswordRules are the Mac's own password content rules for name.
	PasswordRules(ctx context.Context, name string) ([]protocol.LocalRule, error)
}

// Keychain is the user's login keychain. Every method acts as the user, and
// every verdict holds whatever the keychain's unlock state.
type Keychain interface {
	Exists(a LocalAccount) (bool, error)
	Opens(ctx context.Context, a LocalAccount, password []byte) (bool, error)
	// Rekey re-keys the keychain from old to new and verifies that new
	// opens it and old no longer does.
	Rekey(ctx context.Context, a LocalAccount, old, new []byte) error
	// MoveAside renames the keychain, and the Local Items folders sealed by
	// the same password, to timestamped names and says where they went.
	MoveAside(ctx context.Context, a LocalAccount) (Moved, error)
	// Create makes a new login keychain that opens with password, and
	// makes sure it is in the user's keychain search list.
	Create(ctx context.Context, a LocalAccount, password []byte) error
	// LoginInSearchList makes sure the login keychain is in the user's
	// keychain search list, in the user's session, and says whether it
	// added it: Create's last part, for a run that finds the keychain made.
	LoginInSearchList(ctx context.Context, a LocalAccount) (bool, error)

	// Kept lists the old login keychains kept aside, newest first.
	Kept(a LocalAccount) ([]KeptKeychain, error)
	// OpensKept reports whether password opens the kept keychain name.
	OpensKept(ctx context.Context, a LocalAccount, name string, password []byte) (bool, error)
	// RekeyKept re-keys the kept keychain name from old to new and
	// verifies it; a wrong old password changes nothing.
	RekeyKept(ctx context.Context, a LocalAccount, name string, old, new []byte) error
	// AddToSearchList puts the kept keychain name in the user's keychain
	// search list, in the user's session, and says whether it added it.
	AddToSearchList(ctx context.Context, a LocalAccount, name string) (bool, error)
	// UnlockForUser unlocks the kept keychain name in the user's session.
	UnlockForUser(ctx context.Context, a LocalAccount, name string, password []byte) error
}

// Moved says where a user's old keychain files were put aside.
type Moved struct {
	Login      string
	LocalItems []string
}

// FileVault is the disk encryption state.
type FileVault interface {
	Active(ctx context.Context) (bool, error)
	IsUser(ctx context.Context, name string) (bool, error)
	SecureToken(ctx context.Context, name string) (bool, error)
	RefreshPreboot(ctx context.Context) error
}

// ServiceAccount is the hidden SecureToken admin used when a user's
// previous password is forgotten.
type ServiceAccount interface {
	Status(ctx context.Context) ServiceStatus
	Setup(ctx context.Context, adminUser string, adminPassword []byte) error
	Rotate(ctx context.Context) error
	Remove(ctx context.Context) error
	// Reset sets a user's password authorised by the service account,
	// which keeps the user's SecureToken and FileVault in step, and
	// verifies the result.
	Reset(ctx context.Context, a LocalAccount, password []byte) (Verified, error)
}

// Mac groups the platform interfaces.
type Mac struct {
	Accounts  Accounts
	Keychain  Keychain
	FileVault FileVault
	Service   ServiceAccount
}

// Directory is the directory session as the engine uses it.
type Directory interface {
	Connected() bool
	Policy() protocol.Policy
	VerifyPassword(ctx context.Context, user string, password protocol.Secret) (protocol.AccountState, error)
	ChangePassword(ctx context.Context, idemKey string, req protocol.ChangePasswordRequest) (protocol.AccountState, error)
	GetAccount(ctx context.Context, user, localName string) (protocol.AccountState, error)
	AckSync(ctx context.Context, idemKey, user string, version int64) error
	// BeginMFAEnrollment asks for a fresh TOTP secret for a user in an
	// enrolment period; ConfirmMFAEnrollment confirms it with a code.
	BeginMFAEnrollment(ctx context.Context, user string) (protocol.MFAEnrollmentKey, error)
	ConfirmMFAEnrollment(ctx context.Context, idemKey, user, code string) (protocol.AccountState, error)
	// ReportPlaces tells the directory each place's state (no secret).
	ReportPlaces(ctx context.Context, user string, places []protocol.PlaceReport) error
}

// Options configure an Engine.
type Options struct {
	StateDir  string
	Mac       Mac
	Directory Directory
	Journal   *journal.Journal
	Log       *slog.Logger
	// Emit publishes events to the local API's watchers.
	Emit func(Event)
	// DirectoryUser maps a local short name to its directory user.
	DirectoryUser func(local string) string
	Now           func() time.Time
	// Throttle limits the engine's own failed password attempts against the
	// directory per user, so that it never causes a lockout.
	Throttle ThrottleConfig
	// Report receives each account's places after every operation and
	// binding, to tell the directory (Directory.ReportPlaces) off the
	// engine's path; nil: not reported. It must not block.
	Report func(dirUser string, places []protocol.PlaceReport)
}

// record is the persisted state of one bound account.
type record struct {
	LocalUser     string                 `json:"local_user"`
	DirectoryUser string                 `json:"directory_user"`
	Dir           *protocol.AccountState `json:"directory_state,omitempty"`
	DirAt         time.Time              `json:"directory_state_at,omitzero"`
	// SyncedVersion is the directory password version every place of the
	// Mac holds; 0 until known.
	SyncedVersion int64 `json:"synced_version"`
	// Assumed marks a SyncedVersion taken on trust at binding time.
	Assumed    bool `json:"assumed,omitempty"`
	SyncNeeded bool `json:"sync_needed"`
	// Reason says why a sync is needed (a reason.* code). Files written
	// before it was a code kept a sentence under "reason", which is ignored.
	Reason Text `json:"reason_text,omitzero"`
	// CheckVersion, when set, is the directory version before an operation
	// whose directory step was not confirmed; if the directory still has it,
	// the step did not happen.
	CheckVersion int64 `json:"check_version,omitempty"`
	// Places are what the last operation or push said of each place (the
	// old "places", which held sentences, is ignored).
	Places   map[string]Place `json:"places_v2"`
	LastOpID string           `json:"last_op_id,omitempty"`
	// PasswordOpID is the last change or sync (LastOpID may be a keychain
	// recovery, which says nothing of where the password is).
	PasswordOpID string `json:"password_op_id,omitempty"`
	// PendingAck is a synced version the directory has not been told of.
	PendingAck int64 `json:"pending_ack,omitempty"`
	// UnknownUser: the directory said it has no such user.
	UnknownUser bool `json:"unknown_user,omitempty"`
	// NotLinked is set while the directory answers that this Mac is not
	// linked to the user (protocol.CodeNotBound): it sends the Mac nothing
	// about them until the user proves the password from it (Link, or a
	// change or sync) or an administrator assigns the Mac.
	NotLinked    bool   `json:"not_linked,omitempty"`
	ExpiryNotice string `json:"expiry_notice,omitempty"` // date of the last expiry notice
	FileVault    bool   `json:"filevault"`
	// Recovered names the kept keychains a recovery put back; KeptCount
	// is how many kept keychains were not, when last listed.
	Recovered []string `json:"recovered_keychains,omitempty"`
	KeptCount int      `json:"kept_keychains,omitempty"`
}

// Engine runs operations and keeps account state.
type Engine struct {
	opt      Options
	log      *slog.Logger
	throttle *throttle

	mu       sync.Mutex
	accounts map[string]*record
	running  map[string]*journal.Entry
	policy   protocol.Policy
	// rules caches each account's local password rules.
	rules map[string]cachedRules
}

// cachedRules are an account's local rules and when they were read.
type cachedRules struct {
	rules []protocol.LocalRule
	at    time.Time
}

// localRulesTTL is how long the Mac's password rules are taken as read:
// they change only when IT changes the Mac's policy.
const localRulesTTL = 5 * time.Minute

// localRules returns local's password rules on this Mac, read at most once
// per localRulesTTL.
func (e *Engine) localRules(ctx context.Context, local string) ([]protocol.LocalRule, error) {
	e.mu.Lock()
	c, ok := e.rules[local]
	e.mu.Unlock()
	if ok && e.opt.Now().Sub(c.at) < localRulesTTL {
		return c.rules, nil
	}
	rules, err := e.opt.Mac.Accounts.PasswordRules(ctx, local)
	if err != nil {
		return nil, fmt.Errorf("reading this Mac's password policy: %w", err)
	}
	e.mu.Lock()
	e.rules[local] = cachedRules{rules: rules, at: e.opt.Now()}
	e.mu.Unlock()
	return rules, nil
}

// New loads the engine's state and recovers from any operation a crash
// interrupted.
func New(opt Options) (*Engine, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Emit == nil {
		opt.Emit = func(Event) {}
	}
	if opt.DirectoryUser == nil {
		opt.DirectoryUser = func(s string) string { return s }
	}
	e := &Engine{
		opt: opt, log: opt.Log, throttle: newThrottle(opt.Throttle, opt.Now),
		accounts: map[string]*record{}, running: map[string]*journal.Entry{}, rules: map[string]cachedRules{},
		policy: protocol.DefaultPolicy(),
	}
	if err := e.load(); err != nil {
		return nil, err
	}
	if err := e.recover(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Engine) statePath() string { return filepath.Join(e.opt.StateDir, "accounts.json") }

func (e *Engine) load() error {
	b, err := os.ReadFile(e.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading account state: %w", err)
	}
	if err := json.Unmarshal(b, &e.accounts); err != nil {
		return fmt.Errorf("reading account state %s: %w", e.statePath(), err)
	}
	for _, r := range e.accounts {
		if r.Places == nil {
			r.Places = map[string]Place{}
		}
	}
	return nil
}

// saveLocked persists account state; e.mu must be held.
func (e *Engine) saveLocked() error {
	b, err := json.MarshalIndent(e.accounts, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(e.opt.StateDir, 0o700); err != nil {
		return fmt.Errorf("saving account state: %w", err)
	}
	return atomicfile.Write(e.statePath(), b, 0o600)
}

// update changes one account's record under the lock, saves, and publishes
// the new status.
func (e *Engine) update(local string, fn func(r *record)) error {
	e.mu.Lock()
	r := e.recordLocked(local)
	fn(r)
	err := e.saveLocked()
	e.mu.Unlock()
	if err != nil {
		e.log.Error("account state not saved", "local_user", local, "err", err)
	}
	e.opt.Emit(Event{Type: EventStatus})
	return err
}

func (e *Engine) recordLocked(local string) *record {
	r := e.accounts[local]
	if r == nil {
		r = &record{LocalUser: local, DirectoryUser: e.opt.DirectoryUser(local), Places: map[string]Place{}}
		e.accounts[local] = r
	}
	return r
}

// Bound lists the local accounts the engine knows.
func (e *Engine) Bound() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for k := range e.accounts {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Touch makes local a known account without asking the directory yet.
func (e *Engine) Touch(local string) {
	e.mu.Lock()
	_, known := e.accounts[local]
	if !known {
		e.recordLocked(local)
		if err := e.saveLocked(); err != nil {
			e.log.Error("account state not saved", "err", err)
		}
	}
	e.mu.Unlock()
	if !known {
		e.opt.Emit(Event{Type: EventStatus})
	}
}

// IsBound reports whether local has directory state and the directory
// links this Mac to it.
func (e *Engine) IsBound(local string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.accounts[local]
	return ok && r.Dir != nil && !r.NotLinked
}

// IsLinked reports whether the directory links this Mac to local's user,
// as far as the engine last heard: false only after it answered not_bound.
func (e *Engine) IsLinked(local string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.accounts[local]
	return !ok || !r.NotLinked
}

// notLinkedError is the refusal of an operation on an account the
// directory does not link to this Mac.
func notLinkedError() *Error { return &Error{Code: codes.NotBound} }

// SetPolicy records the directory's policy (from the welcome or a push).
func (e *Engine) SetPolicy(p protocol.Policy) {
	e.mu.Lock()
	changed := e.policy != p
	e.policy = p
	e.mu.Unlock()
	if changed {
		e.opt.Emit(Event{Type: EventStatus})
	}
}

// SetLockoutThreshold sizes the engine's own failure budget from the
// directory's lockout threshold: two attempts below it, so that the user
// can still sign in elsewhere after mistyping in the menu bar, and at most
// the configured budget.
func (e *Engine) SetLockoutThreshold(n int) {
	if n <= 0 {
		return
	}
	budget := min(max(1, n-2), e.opt.Throttle.withDefaults().MaxFailures)
	e.throttle.setMax(budget)
}

// Policy returns the policy in force.
func (e *Engine) Policy() protocol.Policy {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.policy
}

// Bind makes sure local is known and refreshes its directory state. It is
// called for configured users at start, on every connect, and the first time
// a user calls the local API.
func (e *Engine) Bind(ctx context.Context, local string) error {
	e.mu.Lock()
	r := e.recordLocked(local)
	dirUser := r.DirectoryUser
	e.mu.Unlock()
	_, fv := e.fileVaultUser(ctx, local)
	st, err := e.opt.Directory.GetAccount(ctx, dirUser, local)
	if err != nil {
		var pe *protocol.Error
		notBound := errors.As(err, &pe) && pe.Code == protocol.CodeNotBound
		_ = e.update(local, func(r *record) {
			r.FileVault = fv
			if notBound {
				r.NotLinked, r.UnknownUser = true, false
			}
			if errors.As(err, &pe) && pe.Code == protocol.CodeUnknownUser {
				r.UnknownUser = true
			}
		})
		if notBound {
			err = notLinkedError()
		}
		return fmt.Errorf("reading directory account %s: %w", dirUser, err)
	}
	var (
		pending int64
		behind  bool
	)
	err = e.update(local, func(r *record) {
		r.FileVault = fv
		r.UnknownUser, r.NotLinked = false, false
		behind = e.applyDirState(r, st)
		pending = r.PendingAck
	})
	if behind {
		e.send(&Notice{Kind: NoticeReset, ID: resetID(st.PasswordVersion), LocalUser: local})
	}
	if a := e.Accounts([]string{local}); len(a) == 1 && a[0].State == StateMFAEnroll {
		n := mfaEnrollNotice(*a[0].MFAEnrollBy)
		n.LocalUser = local
		e.send(n)
	}
	e.report(local)
	if pending > 0 {
		if aerr := e.opt.Directory.AckSync(ctx, ackKey(local, pending), dirUser, pending); aerr == nil {
			_ = e.update(local, func(r *record) {
				if r.PendingAck == pending {
					r.PendingAck = 0
				}
			})
		}
	}
	return err
}

// applyDirState merges a fresh directory view into r, and reports whether
// it found the directory's password changed since the Mac last synced.
func (e *Engine) applyDirState(r *record, st protocol.AccountState) (behind bool) {
	now := e.opt.Now()
	first := r.Dir == nil && r.SyncedVersion == 0
	r.Dir, r.DirAt = &st, now
	switch {
	case first:
		// Binding: take the Mac to be in step with the directory until a
		// push or an operation says otherwise; the places are shown as not
		// verified until then.
		r.SyncedVersion, r.Assumed = st.PasswordVersion, true
		for _, p := range []string{PlaceLocal, PlaceKeychain, PlaceFileVault} {
			r.Places[p] = Place{Name: p, State: PlaceUnknown, Text: T(codes.PlaceNotVerified)}
		}
	case r.CheckVersion != 0 && st.PasswordVersion == r.CheckVersion:
		// An unconfirmed directory change did not happen, and nothing local
		// was touched: the account is still in step.
		r.CheckVersion, r.SyncNeeded, r.Reason = 0, false, Text{}
	case st.PasswordVersion > r.SyncedVersion && !r.SyncNeeded && !e.runningFor(r.LocalUser, st.PasswordVersion):
		r.SyncNeeded = true
		r.Reason = T(codes.ReasonChangedElsewhere)
		e.markBehind(r, now)
		behind = true
	}
	r.CheckVersion = 0
	return behind
}

// runningFor reports whether an operation of local is bringing the Mac to
// version; a push about that version is the operation's own doing.
func (e *Engine) runningFor(local string, version int64) bool {
	op := e.running[local]
	return op != nil && op.TargetVersion == version
}

func (e *Engine) markBehind(r *record, now time.Time) {
	for _, p := range []string{PlaceLocal, PlaceKeychain, PlaceFileVault} {
		if p == PlaceFileVault && !r.FileVault {
			continue
		}
		r.Places[p] = Place{Name: p, State: PlaceBehind, Text: T(codes.PlaceStillOld), ChangedAt: r.Places[p].ChangedAt}
	}
}

// Accounts returns the status of the named local accounts (all when names
// is nil).
func (e *Engine) Accounts(names []string) []Account {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Account
	keys := names
	if keys == nil {
		for k := range e.accounts {
			keys = append(keys, k)
		}
		slices.Sort(keys)
	}
	for _, k := range keys {
		if r, ok := e.accounts[k]; ok {
			out = append(out, e.viewLocked(r))
		}
	}
	return out
}

// viewLocked derives what the user sees from a record.
func (e *Engine) viewLocked(r *record) Account {
	now := e.opt.Now()
	a := Account{LocalUser: r.LocalUser, DirectoryUser: r.DirectoryUser, FileVault: r.FileVault, KeptKeychains: r.KeptCount}
	if d := r.Dir; d != nil {
		a.DisplayName, a.MFA, a.Temporary = d.DisplayName, d.MFA, d.MustChange
		changed := d.PasswordChangedAt
		a.PasswordChangedAt = &changed
		a.ExpiresAt = d.ExpiresAt
		if d.ExpiresAt != nil {
			days := daysUntil(now, *d.ExpiresAt)
			a.DaysLeft = &days
		}
		if d.Locked && (d.LockedUntil == nil || d.LockedUntil.After(now)) {
			a.LockedUntil = lockEnd(d.LockedUntil)
		}
		if d.MFAEnrollBy != nil && d.MFAEnrollBy.After(now) {
			until := *d.MFAEnrollBy
			a.MFAEnrollBy = &until
		}
	}
	for _, name := range []string{PlaceDirectory, PlaceLocal, PlaceFileVault, PlaceKeychain} {
		p, ok := r.Places[name]
		if !ok {
			p = Place{Name: name, State: PlaceUnknown}
		}
		if name == PlaceDirectory && r.Dir != nil {
			// The directory is the source of truth: its place is always
			// what it last said.
			changed := r.Dir.PasswordChangedAt
			p = Place{Name: name, State: PlaceOK, ChangedAt: &changed,
				Text: T(codes.PlaceDirVersion, "version", strconv.FormatInt(r.Dir.PasswordVersion, 10), "set_at", changed.UTC().Format(time.RFC3339))}
		}
		if name == PlaceFileVault && !r.FileVault {
			p = Place{Name: name, State: PlaceNotApplicable, Text: T(codes.PlaceNoFileVault)}
		}
		a.Places = append(a.Places, p)
	}
	if r.LastOpID != "" {
		if ent, err := e.opt.Journal.Read(r.LastOpID); err == nil {
			a.LastOperation = opFromJournal(ent)
		}
	}
	if e.running[r.LocalUser] == nil && r.Dir != nil && !r.NotLinked {
		inSync := !r.SyncNeeded
		a.InSync = &inSync
	}
	switch {
	case e.running[r.LocalUser] != nil:
		a.State, a.Reason = StateBusy, T(codes.ReasonBusy)
	case r.NotLinked:
		// What the directory said before no longer arrives: not linked.
		a.State, a.Reason = StateNotLinked, T(codes.ReasonNotLinked)
	case r.Dir == nil && r.UnknownUser:
		a.State, a.Reason = StateUnknown, T(codes.ReasonUnknownUser, "user", r.DirectoryUser)
	case r.Dir == nil:
		a.State, a.Reason = StateUnknown, T(codes.ReasonWaiting)
	case a.LockedUntil != nil || (r.Dir.Locked && r.Dir.LockedUntil == nil):
		a.State, a.Reason = StateLocked, T(codes.ReasonLocked)
		if a.LockedUntil != nil {
			a.Reason = T(codes.ReasonLocked, "until", a.LockedUntil.UTC().Format(time.RFC3339))
		}
	case r.SyncNeeded:
		a.State, a.Reason = StateSyncNeeded, r.Reason
		if a.Reason.Code == "" {
			a.Reason = T(codes.ReasonChangedElsewhere)
		}
	case r.Dir.MustChange:
		a.State, a.Reason = StateTemporary, T(codes.ReasonTemporary)
	case a.MFAEnrollBy != nil:
		a.State, a.Reason = StateMFAEnroll, T(codes.ReasonMFAEnroll, "until", a.MFAEnrollBy.UTC().Format(time.RFC3339))
	case a.DaysLeft != nil && *a.DaysLeft <= e.policy.ExpiryWarningDays:
		a.State, a.Reason = StateExpiring, T(codes.ReasonExpires, "days", strconv.Itoa(*a.DaysLeft))
	default:
		a.State, a.Reason = StateInSync, T(codes.ReasonInSync)
	}
	return a
}

// NextChange says when, by the engine's clock, an account's state next
// changes by the clock alone, with no push and no operation: a lock's
// announced end, or the next local midnight while an account has an expiry
// date (its days left, and in the warning window its state, change then).
// ok is false when no state waits on the clock.
func (e *Engine) NextChange() (at time.Time, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.opt.Now()
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (!ok || t.Before(next)) {
			next, ok = t, true
		}
	}
	for _, r := range e.accounts {
		d := r.Dir
		if d == nil {
			continue
		}
		if end := lockEnd(d.LockedUntil); d.Locked && end != nil {
			consider(*end)
		}
		if d.ExpiresAt != nil {
			y, m, day := now.Local().Date()
			consider(time.Date(y, m, day+1, 0, 0, 0, 0, time.Local))
		}
	}
	return next, ok
}

// daysUntil counts calendar days, in local time, from now to t: an expiry
// tomorrow at 09:00 is "tomorrow" whatever the hour now.
func daysUntil(now, t time.Time) int {
	y1, m1, d1 := now.Local().Date()
	y2, m2, d2 := t.Local().Date()
	a := time.Date(y1, m1, d1, 0, 0, 0, 0, time.UTC)
	b := time.Date(y2, m2, d2, 0, 0, 0, 0, time.UTC)
	return int(b.Sub(a).Hours() / 24)
}

// Operations returns the last n operations of the accounts keep selects,
// oldest first, from the journal (for diagnostics).
func (e *Engine) Operations(keep func(local string) bool, n int) ([]*Operation, error) {
	all, err := e.opt.Journal.List()
	var out []*Operation
	for _, ent := range all {
		if keep(ent.LocalUser) {
			out = append(out, opFromJournal(ent))
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, err
}

// LocalUser resolves a uid to a short name.
func (e *Engine) LocalUser(ctx context.Context, uid int) (string, error) {
	return e.opt.Mac.Accounts.LookupUID(ctx, uid)
}

// PolicyFor returns the policy response for local: the directory's rules
// and this Mac's own.
func (e *Engine) PolicyFor(ctx context.Context, local string) *PolicyView {
	mac, err := e.localRules(ctx, local)
	if err != nil {
		e.log.Warn("mac password rules unread", "local_user", local, "err", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.policy
	r := e.recordLocked(local)
	resp := &PolicyView{DirectoryUser: r.DirectoryUser, Policy: p, Rules: p.Rules(), MacRules: mac}
	if r.Dir != nil {
		resp.MFA = r.Dir.MFACodeNeeded()
	}
	return resp
}

// passwordOp is the id of r's last change or sync: records written before
// PasswordOpID kept it in LastOpID.
func (r *record) passwordOp() string {
	if r.PasswordOpID != "" {
		return r.PasswordOpID
	}
	return r.LastOpID
}
