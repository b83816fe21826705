package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
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
	if err != nil || (ent.State != localapi.OpSyncNeeded && ent.State != localapi.OpFailed) {
		return priorOp{}
	}
	p := priorOp{target: ent.TargetVersion, localBefore: ent.LocalBefore}
	if s := ent.Step(localapi.StepLocal); s != nil {
		p.local = s.State
	}
	if s := ent.Step(localapi.StepKeychain); s != nil {
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
		return false, p.local == "" || p.local == localapi.StepPending
	}
	switch p.local {
	case localapi.StepDone:
		return true, true
	case "", localapi.StepPending:
		return false, true
	case localapi.StepSkipped:
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
	isSync := m.ent.Kind != localapi.OpChange
	if isSync && !m.forgot {
		if err := m.step(localapi.StepVerify, func() (string, error) { return e.verifyPrevious(ctx, m) }); err != nil {
			return err
		}
	}
	if isSync && m.forgot {
		if err := m.step(localapi.StepVerify, func() (string, error) { return e.observeForgot(ctx, m) }); err != nil {
			return err
		}
	}
	m.fvOn, m.fvUser = e.fileVaultUser(ctx, m.ent.LocalUser)
	fvUser := m.fvUser
	_ = e.update(m.ent.LocalUser, func(r *record) { r.FileVault = fvUser })
	for _, s := range []struct {
		name string
		fn   func(context.Context, *macRun) (string, error)
	}{
		{localapi.StepLocal, e.stepLocal},
		{localapi.StepKeychain, e.stepKeychain},
		{localapi.StepFileVault, e.stepFileVault},
		{localapi.StepPreboot, e.stepPreboot},
		{localapi.StepAck, e.stepAck},
	} {
		if err := m.step(s.name, func() (string, error) { return s.fn(ctx, m) }); err != nil {
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
func (e *Engine) verifyPrevious(ctx context.Context, m *macRun) (string, error) {
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
		return "", fieldError(localapi.CodeWrongLocal, localapi.FieldPrevious, "That is not your previous Mac password.")
	case errors.Is(err, ErrWrongPassword):
		return "", fieldError(localapi.CodeWrongLocal, localapi.FieldPrevious, "Your Mac account takes neither the previous nor the new password.")
	case err != nil:
		return "", err
	}
	m.localDone = holds
	exists, err := mac.Keychain.Exists(m.acct)
	if err != nil {
		return "", err
	}
	if exists {
		// Keychain checks are not logins: trying both costs no lockout.
		opens, err := mac.Keychain.Opens(ctx, m.acct, m.old)
		if err != nil {
			return "", err
		}
		if !opens {
			if m.keychainDone, err = mac.Keychain.Opens(ctx, m.acct, m.new); err != nil {
				return "", err
			}
			if !m.keychainDone {
				return "", &localapi.Error{Code: localapi.CodeKeychain,
					Message: "Your login keychain does not open with your previous password, so it still uses an older one. Nothing was changed.",
					Hint:    "Run Sync Password again and enter the keychain's password as the previous one, or choose that you don't remember it (the keychain is then moved aside, never deleted)."}
			}
		}
	}
	if m.localDone {
		return "The Mac account already takes the new password.", nil
	}
	return "Your previous password opens the Mac account and the keychain.", nil
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
func (e *Engine) observeForgot(ctx context.Context, m *macRun) (string, error) {
	holds, sure := m.localHoldsNew(m.targetVersion())
	if holds {
		err := verifyLocal(ctx, e.opt.Mac.Accounts, m.ent.LocalUser, m.new)
		switch {
		case err == nil:
			m.localDone = true
		case errors.Is(err, ErrWrongPassword) && !sure:
		case errors.Is(err, ErrWrongPassword):
			return "", fmt.Errorf("the last operation reset the Mac account, but it does not take the new password: %w", err)
		default:
			return "", err
		}
	}
	if m.prior.target == m.targetVersion() && m.prior.keychain != "" && m.prior.keychain != localapi.StepPending {
		exists, err := e.opt.Mac.Keychain.Exists(m.acct)
		if err != nil {
			return "", err
		}
		if exists {
			if m.keychainDone, err = e.opt.Mac.Keychain.Opens(ctx, m.acct, m.new); err != nil {
				return "", err
			}
		}
	}
	return "", skip{reasonForgotten, "Previous password forgotten: the service account resets the Mac account."}
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
func (e *Engine) stepLocal(ctx context.Context, m *macRun) (string, error) {
	if m.localDone {
		return "", skip{reasonDone, "The Mac account already uses the new password."}
	}
	m.mutated = true
	e.mu.Lock()
	m.ent.LocalBefore = m.acct.PasswordLastSet
	err := e.opt.Journal.Write(m.ent)
	e.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("journal before the local change: %w", err)
	}
	var v Verified
	how := "changed with the previous password, which keeps the SecureToken"
	if m.forgot {
		v, err = e.opt.Mac.Service.Reset(ctx, m.acct, m.new)
		how = "reset by the Lockstep service account, which keeps the SecureToken"
	} else {
		v, err = e.opt.Mac.Accounts.Change(ctx, m.acct, m.old, m.new)
	}
	if err != nil {
		if errors.Is(err, ErrPolicyRefused) {
			return "", &localapi.Error{Code: localapi.CodePlatform, Field: localapi.FieldNew, Message: "This Mac's password policy refused the new password: " + err.Error()}
		}
		return "", err
	}
	m.verified = &v
	return "The Mac account opens with the new password (" + how + ").", nil
}

// stepKeychain moves the login keychain to the new password: a re-key from
// the old password (every item kept), or, when the old one is forgotten, the
// old keychain and its Local Items moved aside (never deleted) and a new one
// made.
func (e *Engine) stepKeychain(ctx context.Context, m *macRun) (string, error) {
	kc := e.opt.Mac.Keychain
	if m.keychainDone {
		return "", skip{reasonDone, "The login keychain already opens with the new password."}
	}
	exists, err := kc.Exists(m.acct)
	if err != nil {
		return "", err
	}
	switch {
	case !exists && !m.forgot:
		return "", skip{reasonNotApplicable, "No login keychain yet: macOS makes one at the next login with the new password."}
	case !exists:
		// A forgotten-password sync interrupted after the old keychain was
		// moved aside: finish by making the new one.
		m.mutated = true
		if err := kc.Create(ctx, m.acct, m.new); err != nil {
			return "", fmt.Errorf("creating a new keychain: %w", err)
		}
		return "A new login keychain opens with the new password.", nil
	case !m.forgot:
		m.mutated = true
		if err := kc.Rekey(ctx, m.acct, m.old, m.new); err != nil {
			return "", err
		}
		return "The login keychain opens with the new password; its items are kept.", nil
	}
	m.mutated = true
	moved, err := kc.MoveAside(ctx, m.acct)
	if err != nil {
		return "", fmt.Errorf("moving the old keychain aside: %w", err)
	}
	where := moved.Login
	if len(moved.LocalItems) > 0 {
		where += " (Local Items: " + strings.Join(moved.LocalItems, ", ") + ")"
	}
	m.note(fmt.Sprintf("Your old login keychain was kept at %s. It still opens with your previous password if you remember it later.", where))
	if err := kc.Create(ctx, m.acct, m.new); err != nil {
		return "", fmt.Errorf("creating a new keychain (the old one is safe at %s): %w", where, err)
	}
	return "A new login keychain opens with the new password; the old one was moved to " + where + ".", nil
}

// stepFileVault checks that FileVault follows the new password: the
// account still holds its SecureToken. The local step's own observation is
// used when it made one.
func (e *Engine) stepFileVault(ctx context.Context, m *macRun) (string, error) {
	switch {
	case !m.fvOn:
		return "", skip{reasonNotApplicable, "FileVault is off."}
	case !m.fvUser:
		return "", skip{reasonNotApplicable, "Not a FileVault user: this account does not unlock the disk."}
	}
	token := m.verified != nil && m.verified.SecureToken
	if !token {
		var err error
		if token, err = e.opt.Mac.FileVault.SecureToken(ctx, m.ent.LocalUser); err != nil {
			return "", err
		}
	}
	if !token {
		return "", fmt.Errorf("%w: %s no longer holds a SecureToken, so FileVault may still ask for the previous password", ErrNoSecureToken, m.ent.LocalUser)
	}
	return "SecureToken kept: FileVault unlocks with the new password.", nil
}

func (e *Engine) stepPreboot(ctx context.Context, m *macRun) (string, error) {
	if !m.fvUser {
		return "", skip{reasonNotApplicable, "Not needed without FileVault."}
	}
	if err := e.opt.Mac.FileVault.RefreshPreboot(ctx); err != nil {
		return "", err
	}
	return "The Preboot volume was refreshed.", nil
}

func (e *Engine) stepAck(ctx context.Context, m *macRun) (string, error) {
	e.mu.Lock()
	version, dirUser := m.ent.TargetVersion, m.ent.DirectoryUser
	e.mu.Unlock()
	local := m.ent.LocalUser
	actx, cancel := context.WithTimeout(ctx, offlineWait)
	defer cancel()
	if err := e.opt.Directory.AckSync(actx, ackKey(local, version), dirUser, version); err != nil {
		_ = e.update(local, func(r *record) { r.PendingAck = version })
		return "", skip{reasonDeferred, "The Mac is in sync; the directory is told when it is reachable."}
	}
	return "The directory knows this Mac is in sync.", nil
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
