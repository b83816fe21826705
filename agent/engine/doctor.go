package engine

import (
	"context"
	"errors"
	"strconv"

	"github.com/lockstep-dev/lockstep/protocol"
)

// Doctor checks every place of local and says what is out of step and how
// to fix it. With a password it also checks that the password opens the
// Mac account and the keychain. It never sends a password to the directory.
func (e *Engine) Doctor(ctx context.Context, local string, password protocol.Secret, connected bool) DoctorReport {
	rep := DoctorReport{LocalUser: local}
	add := func(place string, ok bool, text Text, fix ...Text) {
		c := Check{Place: place, OK: ok, Text: text}
		if !ok && len(fix) > 0 {
			c.Fix = &fix[0]
		}
		rep.Checks = append(rep.Checks, c)
	}
	mac := e.opt.Mac

	e.mu.Lock()
	r, bound := e.accounts[local]
	var rec record
	if bound {
		rec = *r
	}
	running := e.running[local] != nil
	e.mu.Unlock()

	switch {
	case !connected:
		add(PlaceDirectory, false, T(DoctorOffline), T(FixCheckNetwork))
	case bound && rec.NotLinked:
		add(PlaceDirectory, false, T(DoctorNotLinked), T(FixLink))
	case !bound || rec.Dir == nil:
		add(PlaceDirectory, false, T(ReasonWaiting), T(FixCheckNetwork))
	case rec.SyncNeeded:
		reason := rec.Reason.Code
		if reason == "" {
			reason = ReasonChangedElsewhere
		}
		add(PlaceDirectory, false, T(DoctorSyncNeeded, "reason", reason), T(FixSync))
	default:
		add(PlaceDirectory, true, T(DoctorDirectoryOK, "user", rec.DirectoryUser,
			"version", strconv.FormatInt(rec.Dir.PasswordVersion, 10), "synced", strconv.FormatInt(rec.SyncedVersion, 10)))
	}
	if running {
		add(CheckOperation, false, T(DoctorBusy), T(FixWait))
	}

	acct, err := mac.Accounts.Lookup(ctx, local)
	switch {
	case errors.Is(err, ErrNoSuchUser):
		add(PlaceLocal, false, T(DoctorNoLocalUser, "user", local), T(FixCheckName))
		return rep
	case err != nil:
		add(PlaceLocal, false, T(DoctorLocalUnread, "detail", err.Error()), T(FixDiagnose))
		return rep
	case acct.Disabled:
		add(PlaceLocal, false, T(DoctorLocalDisabled), T(FixAskEnable))
	case unmanagedKind(acct) != "":
		kind := unmanagedKind(acct)
		add(PlaceLocal, false, T(DoctorLocalUnmanaged, "kind", kind, "node", acct.OriginalNodeName), T(FixAskIT, "kind", kind))
	default:
		uid, home := strconv.Itoa(acct.UID), acct.Home
		if password.Empty() {
			add(PlaceLocal, true, T(DoctorLocalOK, "uid", uid, "home", home))
		} else if err := verifyLocal(ctx, mac.Accounts, local, password); err != nil {
			add(PlaceLocal, false, T(DoctorLocalWrong), T(FixSync))
		} else {
			add(PlaceLocal, true, T(DoctorLocalOpens, "uid", uid, "home", home))
		}
	}

	if on, user := e.fileVaultUser(ctx, local); !on {
		if _, err := mac.FileVault.Active(ctx); err != nil {
			add(PlaceFileVault, false, T(DoctorFVUnread, "detail", err.Error()), T(FixDiagnose))
		} else {
			add(PlaceFileVault, true, T(DoctorFVOff))
		}
	} else if !user {
		add(PlaceFileVault, true, T(DoctorFVNotUser))
	} else if tok, err := mac.FileVault.SecureToken(ctx, local); err != nil || !tok {
		add(PlaceFileVault, false, T(DoctorFVNoToken), T(FixGrantToken))
	} else {
		add(PlaceFileVault, true, T(DoctorFVOK))
	}

	if exists, err := mac.Keychain.Exists(acct); err != nil {
		add(PlaceKeychain, false, T(DoctorKCUnread, "detail", err.Error()), T(FixDiagnose))
	} else if !exists {
		add(PlaceKeychain, true, T(DoctorKCNone))
	} else if !password.Empty() {
		if ok, err := mac.Keychain.Opens(ctx, acct, password); err != nil || !ok {
			add(PlaceKeychain, false, T(DoctorKCWrong), T(FixSyncKeychain))
		} else {
			add(PlaceKeychain, true, T(DoctorKCOpens))
		}
	} else {
		add(PlaceKeychain, true, T(DoctorKCExists))
	}

	// A missing service account is a choice, not a fault; a broken one is.
	sa := mac.Service.Status(ctx)
	switch {
	case sa.Usable:
		add(CheckServiceAccount, true, T(DoctorServiceReady))
	case !sa.Present:
		add(CheckServiceAccount, true, T(DoctorServiceNone))
	default:
		problem := sa.Problem
		if problem == "" {
			problem = ServiceNotUsable
		}
		add(CheckServiceAccount, false, T(DoctorServiceBroken, "problem", problem), T(FixServiceAccount))
	}
	return rep
}
