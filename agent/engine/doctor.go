package engine

import (
	"context"
	"errors"
	"strconv"

	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
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
		add(PlaceDirectory, false, T(codes.DoctorOffline), T(codes.FixCheckNetwork))
	case bound && rec.NotLinked:
		add(PlaceDirectory, false, T(codes.DoctorNotLinked), T(codes.FixLink))
	case !bound || rec.Dir == nil:
		add(PlaceDirectory, false, T(codes.ReasonWaiting), T(codes.FixCheckNetwork))
	case rec.SyncNeeded:
		reason := rec.Reason.Code
		if reason == "" {
			reason = codes.ReasonChangedElsewhere
		}
		add(PlaceDirectory, false, T(codes.DoctorSyncNeeded, "reason", reason), T(codes.FixSync))
	default:
		add(PlaceDirectory, true, T(codes.DoctorDirectoryOK, "user", rec.DirectoryUser,
			"version", strconv.FormatInt(rec.Dir.PasswordVersion, 10), "synced", strconv.FormatInt(rec.SyncedVersion, 10)))
	}
	if running {
		add(CheckOperation, false, T(codes.DoctorBusy), T(codes.FixWait))
	}

	acct, err := mac.Accounts.Lookup(ctx, local)
	switch {
	case errors.Is(err, ErrNoSuchUser):
		add(PlaceLocal, false, T(codes.DoctorNoLocalUser, "user", local), T(codes.FixCheckName))
		return rep
	case err != nil:
		add(PlaceLocal, false, T(codes.DoctorLocalUnread, "detail", err.Error()), T(codes.FixDiagnose))
		return rep
	case acct.Disabled:
		add(PlaceLocal, false, T(codes.DoctorLocalDisabled), T(codes.FixAskEnable))
	case unmanagedKind(acct) != "":
		kind := unmanagedKind(acct)
		add(PlaceLocal, false, T(codes.DoctorLocalUnmanaged, "kind", kind, "node", acct.OriginalNodeName), T(codes.FixAskIT, "kind", kind))
	default:
		uid, home := strconv.Itoa(acct.UID), acct.Home
		if password.Empty() {
			add(PlaceLocal, true, T(codes.DoctorLocalOK, "uid", uid, "home", home))
		} else if err := verifyLocal(ctx, mac.Accounts, local, password); err != nil {
			add(PlaceLocal, false, T(codes.DoctorLocalWrong), T(codes.FixSync))
		} else {
			add(PlaceLocal, true, T(codes.DoctorLocalOpens, "uid", uid, "home", home))
		}
	}

	if on, user := e.fileVaultUser(ctx, local); !on {
		if _, err := mac.FileVault.Active(ctx); err != nil {
			add(PlaceFileVault, false, T(codes.DoctorFVUnread, "detail", err.Error()), T(codes.FixDiagnose))
		} else {
			add(PlaceFileVault, true, T(codes.DoctorFVOff))
		}
	} else if !user {
		add(PlaceFileVault, true, T(codes.DoctorFVNotUser))
	} else if tok, err := mac.FileVault.SecureToken(ctx, local); err != nil || !tok {
		add(PlaceFileVault, false, T(codes.DoctorFVNoToken), T(codes.FixGrantToken))
	} else {
		add(PlaceFileVault, true, T(codes.DoctorFVOK))
	}

	if exists, err := mac.Keychain.Exists(acct); err != nil {
		add(PlaceKeychain, false, T(codes.DoctorKCUnread, "detail", err.Error()), T(codes.FixDiagnose))
	} else if !exists {
		add(PlaceKeychain, true, T(codes.DoctorKCNone))
	} else if !password.Empty() {
		if ok, err := mac.Keychain.Opens(ctx, acct, password); err != nil || !ok {
			add(PlaceKeychain, false, T(codes.DoctorKCWrong), T(codes.FixSyncKeychain))
		} else {
			add(PlaceKeychain, true, T(codes.DoctorKCOpens))
		}
	} else {
		add(PlaceKeychain, true, T(codes.DoctorKCExists))
	}

	// A missing service account is a choice, not a fault; a broken one is.
	sa := mac.Service.Status(ctx)
	switch {
	case sa.Usable:
		add(CheckServiceAccount, true, T(codes.DoctorServiceReady))
	case !sa.Present:
		add(CheckServiceAccount, true, T(codes.DoctorServiceNone))
	default:
		problem := sa.Problem
		if problem == "" {
			problem = codes.ServiceNotUsable
		}
		add(CheckServiceAccount, false, T(codes.DoctorServiceBroken, "problem", problem), T(codes.FixServiceAccount))
	}
	return rep
}
