package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// macRun is the Mac side of one operation: the account as read at its
// start, the two passwords, and what the steps have learnt so far, passed
// from step to step so that nothing is observed twice.
type macRun struct {
	*run
	acct   LocalAccount
	old    protocol.Secret // the current (change) or previous (sync) Mac password; empty when forgotten
	new    protocol.Secret
	forgot bool
	// prior is what the operation before this one, which left the account
	// needing a sync, did to the Mac (from its journal).
	prior priorOp
	// syncedVersion is the directory version every place was last known to
	// hold.
	syncedVersion int64
	// localDone: the Mac account already takes the new password.
	localDone bool
	// keychainDone: the login keychain already opens with the new password.
	keychainDone bool
	// verified is what the local step observed after its change.
	verified *Verified
	fvOn     bool // FileVault is on
	fvUser   bool // and this account unlocks it
}

// priorOp is what an interrupted or failed operation left on the Mac, read
// from its journal so that the next one knows which password each place
// holds without trying passwords (a wrong one is a failed login the Mac
// counts toward its lockout).
type priorOp struct {
	target int64 // the directory version it was bringing the Mac to
	local  string
	// localBefore is passwordLastSet before its local step ran.
	localBefore float64
	keychain    string
}

// priorFor reads the last operation of local if it may have left a place
// changed: its per-place step states.
func (e *Engine) priorFor(lastOpID string) priorOp {
	if lastOpID == "" {
		return priorOp{}
	}
	ent, err := e.opt.Journal.Read(lastOpID)
	if err != nil || (ent.State != OpSyncNeeded && ent.State != OpFailed) {
		return priorOp{}
	}
	p := priorOp{target: ent.TargetVersion, localBefore: ent.LocalBefore}
	if s := ent.Step(StepLocal); s != nil {
		p.local = s.State
	}
	if s := ent.Step(StepKeychain); s != nil {
		p.keychain = s.State
	}
	return p
}

// localHoldsNew decides, for a sync to version target, whether the Mac
// account already takes the new password, from what the prior operation's
// journal says and, when its local step was cut short, from whether the
// account's passwordLastSetTime moved since. sure is false when neither
// tells.
func (m *macRun) localHoldsNew(target int64) (holds, sure bool) {
	p := m.prior
	if p.target != target || target == 0 {
		if m.syncedVersion == target && target != 0 {
			// The Mac was last in step at this very version: its account
			// holds the new password, unless it was changed outside
			// Lockstep (a sync to mend only the keychain).
			return true, false
		}
		return false, p.local == "" || p.local == StepPending
	}
	switch p.local {
	case StepDone:
		return true, true
	case "", StepPending:
		return false, true
	case StepSkipped:
		// Found done already, or never reached: the journal does not say.
		return false, false
	}
	// Running when the operation stopped, or failed: the change may have
	// landed. The Mac's own record of the last password change says.
	if p.localBefore != 0 && m.acct.PasswordLastSet != 0 {
		return m.acct.PasswordLastSet != p.localBefore, true
	}
	return true, false
}

// applyMac runs the Mac's steps: verify the previous password (sync only),
// local account, keychain, FileVault, Preboot, acknowledge. For a change,
// the verify step already ran and old is the verified current password.
func (e *Engine) applyMac(ctx context.Context, m *macRun) error {
	isSync := m.ent.Kind != OpChange
	if isSync && !m.forgot {
		if err := m.step(StepVerify, func() (Text, error) { return e.verifyPrevious(ctx, m) }); err != nil {
			return err
		}
	}
	if isSync && m.forgot {
		if err := m.step(StepVerify, func() (Text, error) { return e.observeForgot(ctx, m) }); err != nil {
			return err
		}
	}
	m.fvOn, m.fvUser = e.fileVaultUser(ctx, m.ent.LocalUser)
	fvUser := m.fvUser
	_ = e.update(m.ent.LocalUser, func(r *record) { r.FileVault = fvUser })
	for _, s := range []struct {
		name string
		fn   func(context.Context, *macRun) (Text, error)
	}{
		{StepLocal, e.stepLocal},
		{StepKeychain, e.stepKeychain},
		{StepFileVault, e.stepFileVault},
		{StepPreboot, e.stepPreboot},
		{StepAck, e.stepAck},
	} {
		if err := m.step(s.name, func() (Text, error) { return s.fn(ctx, m) }); err != nil {
			return err
		}
	}
	return nil
}

// verifyPrevious checks, before anything on the Mac changes, that the
// previous password opens the account and the keychain (or that a place
// already takes the new one). Which password each place should take comes
// from the prior operation's journal, so right passwords make no failed
// login.
func (e *Engine) verifyPrevious(ctx context.Context, m *macRun) (Text, error) {
	mac, local := e.opt.Mac, m.ent.LocalUser
	target := m.targetVersion()
	holds, sure := m.localHoldsNew(target)
	first, second := m.old, m.new
	if holds {
		first, second = m.new, m.old
	}
	err := verifyLocal(ctx, mac.Accounts, local, first)
	if err != nil && errors.Is(err, ErrWrongPassword) && !sure {
		// The journal cannot say: the other password is the only way left.
		holds = !holds
		err = verifyLocal(ctx, mac.Accounts, local, second)
	}
	switch {
	case errors.Is(err, ErrWrongPassword) && !holds:
		return Text{}, fieldError(codes.WrongLocal, FieldPrevious)
	case errors.Is(err, ErrWrongPassword):
		return Text{}, &Error{Code: codes.WrongLocal, Field: FieldPrevious, Params: map[string]string{"which": "neither"}}
	case err != nil:
		return Text{}, err
	}
	m.localDone = holds
	exists, err := mac.Keychain.Exists(m.acct)
	if err != nil {
		return Text{}, err
	}
	if exists {
		// Keychain checks are not logins: trying both costs no lockout.
		opens, err := mac.Keychain.Opens(ctx, m.acct, m.old)
		if err != nil {
			return Text{}, err
		}
		if !opens {
			if m.keychainDone, err = mac.Keychain.Opens(ctx, m.acct, m.new); err != nil {
				return Text{}, err
			}
			if !m.keychainDone {
				return Text{}, &Error{Code: codes.Keychain, Params: map[string]string{"which": "previous"}}
			}
		}
	}
	if m.localDone {
		return T(codes.StepLocalHoldsNew), nil
	}
	return T(codes.StepPreviousOK), nil
}

// verifyLocal authenticates name with pw; a password that is right but
// must be changed (an expired local password) counts as right.
func verifyLocal(ctx context.Context, a Accounts, name string, pw []byte) error {
	err := a.Verify(ctx, name, pw)
	if errors.Is(err, ErrMustChange) {
		return nil
	}
	return err
}

// observeForgot is the verify step of a forgotten-password sync: no
// password to check, so it learns from the prior operation's journal what is
// already done, trying only the new password, and only when the journal says
// the reset may have landed.
func (e *Engine) observeForgot(ctx context.Context, m *macRun) (Text, error) {
	holds, sure := m.localHoldsNew(m.targetVersion())
	if holds {
		err := verifyLocal(ctx, e.opt.Mac.Accounts, m.ent.LocalUser, m.new)
		switch {
		case err == nil:
			m.localDone = true
		case errors.Is(err, ErrWrongPassword) && !sure:
		case errors.Is(err, ErrWrongPassword):
			return Text{}, fmt.Errorf("the last operation reset the Mac account, but it does not take the new password: %w", err)
		default:
			return Text{}, err
		}
	}
	if m.prior.target == m.targetVersion() && m.prior.keychain != "" && m.prior.keychain != StepPending {
		exists, err := e.opt.Mac.Keychain.Exists(m.acct)
		if err != nil {
			return Text{}, err
		}
		if exists {
			if m.keychainDone, err = e.opt.Mac.Keychain.Opens(ctx, m.acct, m.new); err != nil {
				return Text{}, err
			}
		}
	}
	return Text{}, skip{reasonForgotten, T(codes.StepForgotten)}
}

// targetVersion is the directory version the operation brings the Mac to.
func (m *macRun) targetVersion() int64 {
	m.e.mu.Lock()
	defer m.e.mu.Unlock()
	return m.ent.TargetVersion
}

// stepLocal moves the Mac account to the new password: a change with the
// old one (which keeps the SecureToken), or a reset by the service account
// when the old one is forgotten. The platform verifies the result.
func (e *Engine) stepLocal(ctx context.Context, m *macRun) (Text, error) {
	if m.localDone {
		return Text{}, skip{reasonDone, T(codes.StepLocalDone)}
	}
	m.mutated = true
	e.mu.Lock()
	m.ent.LocalBefore = m.acct.PasswordLastSet
	err := e.opt.Journal.Write(m.ent)
	e.mu.Unlock()
	if err != nil {
		return Text{}, fmt.Errorf("journal before the local change: %w", err)
	}
	var v Verified
	done := T(codes.StepLocalChanged)
	if m.forgot {
		v, err = e.opt.Mac.Service.Reset(ctx, m.acct, m.new)
		done = T(codes.StepLocalReset)
	} else {
		v, err = e.opt.Mac.Accounts.Change(ctx, m.acct, m.old, m.new)
	}
	if err != nil {
		if errors.Is(err, ErrPolicyRefused) {
			return Text{}, &Error{Code: codes.MacPolicy, Field: FieldNew, Params: map[string]string{"source": "refused"}, Detail: err.Error()}
		}
		return Text{}, err
	}
	m.verified = &v
	return done, nil
}

// stepKeychain moves the login keychain to the new password: a re-key from
// the old password (every item kept), or, when the old one is forgotten, the
// old keychain and its Local Items moved aside (never deleted) and a new one
// made.
func (e *Engine) stepKeychain(ctx context.Context, m *macRun) (Text, error) {
	t, err := e.stepLoginKeychain(ctx, m)
	var sk skip
	if !m.forgot && (err == nil || (errors.As(err, &sk) && sk.reason == reasonDone)) {
		// Keychains a recovery put back carry the login password too.
		e.rekeyRecovered(ctx, m)
	}
	return t, err
}

func (e *Engine) stepLoginKeychain(ctx context.Context, m *macRun) (Text, error) {
	kc := e.opt.Mac.Keychain
	if m.keychainDone {
		if m.forgot {
			// A forgotten-password sync run again finds the new keychain
			// made, which an interruption may have left out of the
			// search list (Create lists it after making it).
			m.mutated = true
			if _, err := kc.LoginInSearchList(ctx, m.acct); err != nil {
				return Text{}, fmt.Errorf("putting the new keychain in the search list: %w", err)
			}
		}
		return Text{}, skip{reasonDone, T(codes.StepKeychainDone)}
	}
	exists, err := kc.Exists(m.acct)
	if err != nil {
		return Text{}, err
	}
	switch {
	case !exists && !m.forgot:
		return Text{}, skip{reasonNotApplicable, T(codes.StepKeychainNone)}
	case !exists:
		// A forgotten-password sync interrupted after the old keychain was
		// moved aside: finish by making the new one.
		m.mutated = true
		if err := kc.Create(ctx, m.acct, m.new); err != nil {
			return Text{}, fmt.Errorf("creating a new keychain: %w", err)
		}
		return T(codes.StepKeychainCreated), nil
	case !m.forgot:
		m.mutated = true
		if err := kc.Rekey(ctx, m.acct, m.old, m.new); err != nil {
			return Text{}, err
		}
		return T(codes.StepKeychainRekeyed), nil
	}
	m.mutated = true
	moved, err := kc.MoveAside(ctx, m.acct)
	if err != nil {
		return Text{}, fmt.Errorf("moving the old keychain aside: %w", err)
	}
	where := []string{"path", moved.Login}
	if len(moved.LocalItems) > 0 {
		where = append(where, "local_items", strings.Join(moved.LocalItems, ","))
	}
	m.note(T(codes.NoteKeychainKept, where...))
	// The tray offers to get it back from now on.
	if _, err := e.listKept(m.acct); err != nil {
		e.log.Warn("kept keychains not listed", "local_user", m.acct.Name, "err", err)
	}
	if err := kc.Create(ctx, m.acct, m.new); err != nil {
		return Text{}, fmt.Errorf("creating a new keychain (the old one is safe at %s): %w", moved.Login, err)
	}
	return T(codes.StepKeychainMoved, where...), nil
}

// rekeyRecovered moves the kept keychains a recovery put back in the search
// list along with the login keychain, from the old password to the new one,
// so they keep opening without a prompt. One that opens with neither is
// left as it is; a failure is logged and stops nothing: the login keychain,
// the place the operation is about, is verified on its own.
func (e *Engine) rekeyRecovered(ctx context.Context, m *macRun) {
	e.mu.Lock()
	names := slices.Clone(e.recordLocked(m.acct.Name).Recovered)
	e.mu.Unlock()
	if len(names) == 0 || m.old.Empty() {
		return
	}
	kc := e.opt.Mac.Keychain
	kept, err := kc.Kept(m.acct)
	if err != nil {
		e.log.Warn("recovered keychains not listed", "local_user", m.acct.Name, "err", err)
		return
	}
	for _, k := range kept {
		if !slices.Contains(names, k.Name) {
			continue
		}
		if opens, err := kc.OpensKept(ctx, m.acct, k.Name, m.new); err == nil && opens {
			continue
		}
		if err := kc.RekeyKept(ctx, m.acct, k.Name, m.old, m.new); err != nil {
			e.log.Warn("recovered keychain not re-keyed", "local_user", m.acct.Name, "keychain", k.Name, "err", err)
			continue
		}
		e.log.Info("recovered keychain re-keyed", "local_user", m.acct.Name, "keychain", k.Name)
	}
}

// stepFileVault checks that FileVault follows the new password: the
// account still holds its SecureToken. The local step's own observation is
// used when it made one.
func (e *Engine) stepFileVault(ctx context.Context, m *macRun) (Text, error) {
	switch {
	case !m.fvOn:
		return Text{}, skip{reasonNotApplicable, T(codes.StepFileVaultOff)}
	case !m.fvUser:
		return Text{}, skip{reasonNotApplicable, T(codes.StepFileVaultNotUser)}
	}
	token := m.verified != nil && m.verified.SecureToken
	if !token {
		var err error
		if token, err = e.opt.Mac.FileVault.SecureToken(ctx, m.ent.LocalUser); err != nil {
			return Text{}, err
		}
	}
	if !token {
		return Text{}, fmt.Errorf("%w: %s no longer holds a SecureToken, so FileVault may still ask for the previous password", ErrNoSecureToken, m.ent.LocalUser)
	}
	return T(codes.StepFileVaultKept), nil
}

func (e *Engine) stepPreboot(ctx context.Context, m *macRun) (Text, error) {
	if !m.fvUser {
		return Text{}, skip{reasonNotApplicable, T(codes.StepPrebootNotNeeded)}
	}
	if err := e.opt.Mac.FileVault.RefreshPreboot(ctx); err != nil {
		return Text{}, err
	}
	return T(codes.StepPrebootDone), nil
}

func (e *Engine) stepAck(ctx context.Context, m *macRun) (Text, error) {
	e.mu.Lock()
	version, dirUser := m.ent.TargetVersion, m.ent.DirectoryUser
	e.mu.Unlock()
	local := m.ent.LocalUser
	actx, cancel := context.WithTimeout(ctx, offlineWait)
	defer cancel()
	if err := e.opt.Directory.AckSync(actx, ackKey(local, version), dirUser, version); err != nil {
		_ = e.update(local, func(r *record) { r.PendingAck = version })
		return Text{}, skip{reasonDeferred, T(codes.StepAckDeferred)}
	}
	return T(codes.StepAckDone), nil
}

// fileVaultUser reports whether FileVault is on and local unlocks it.
func (e *Engine) fileVaultUser(ctx context.Context, local string) (on, user bool) {
	fs := e.opt.Mac.FileVault
	if on, err := fs.Active(ctx); err != nil || !on {
		return false, false
	}
	is, err := fs.IsUser(ctx, local)
	return true, err == nil && is
}

// checkLocalRules reports the Mac's own rules the new password fails.
func (e *Engine) checkLocalRules(ctx context.Context, local string, pw protocol.Secret) ([]protocol.LocalRule, error) {
	rules, err := e.localRules(ctx, local)
	if err != nil {
		return nil, err
	}
	return protocol.UnmetLocal(rules, pw), nil
}
