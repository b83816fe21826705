package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Doctor checks every place of local and says what is out of step and how
// to fix it. With a password it also checks that the password opens the
// Mac account and the keychain. It never sends a password to the directory.
func (e *Engine) Doctor(ctx context.Context, local string, password protocol.Secret, connected bool) localapi.DoctorReport {
	rep := localapi.DoctorReport{LocalUser: local}
	add := func(place string, ok bool, detail, fix string) {
		c := localapi.Check{Place: place, OK: ok, Detail: detail}
		if !ok {
			c.Fix = fix
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
		add(localapi.PlaceDirectory, false, "The directory is not reachable.", "Check the network; `lockstep status` shows the last connection error.")
	case !bound || rec.Dir == nil:
		add(localapi.PlaceDirectory, false, "This account is not bound to a directory user yet.", "Run `lockstep status` as the user once it is online.")
	case rec.SyncNeeded:
		add(localapi.PlaceDirectory, false, rec.Reason, "Run `lockstep sync`.")
	default:
		add(localapi.PlaceDirectory, true, fmt.Sprintf("Directory user %s, password version %d; this Mac holds version %d.", rec.DirectoryUser, rec.Dir.PasswordVersion, rec.SyncedVersion), "")
	}
	if running {
		add("operation", false, "An operation is running right now.", "Wait for it to finish, then run the doctor again.")
	}

	acct, err := mac.Accounts.Lookup(ctx, local)
	switch {
	case errors.Is(err, ErrNoSuchUser):
		add(localapi.PlaceLocal, false, "There is no local account named "+local+".", "Check the name.")
		return rep
	case err != nil:
		add(localapi.PlaceLocal, false, "Could not read the account: "+err.Error(), "Run `lockstep diagnose` and send the bundle to IT.")
		return rep
	case acct.Disabled:
		add(localapi.PlaceLocal, false, "The account is disabled.", "Ask IT to enable it.")
	default:
		detail := fmt.Sprintf("uid %d, home %s.", acct.UID, acct.Home)
		if !password.Empty() {
			if err := mac.Accounts.Verify(ctx, local, password); err != nil {
				add(localapi.PlaceLocal, false, "The password does not open the Mac account.", "Run `lockstep sync` with your previous Mac password and your directory password.")
			} else {
				add(localapi.PlaceLocal, true, "The password opens the Mac account; "+detail, "")
			}
		} else {
			add(localapi.PlaceLocal, true, detail, "")
		}
	}

	if on, err := mac.FileVault.Active(ctx); err != nil {
		add(localapi.PlaceFileVault, false, "Could not read FileVault's state: "+err.Error(), "Run `lockstep diagnose`.")
	} else if !on {
		add(localapi.PlaceFileVault, true, "FileVault is off.", "")
	} else if is, err := mac.FileVault.IsUser(ctx, local); err != nil || !is {
		add(localapi.PlaceFileVault, true, "FileVault is on; this account does not unlock it.", "")
	} else if tok, err := mac.FileVault.SecureToken(ctx, local); err != nil || !tok {
		add(localapi.PlaceFileVault, false, "This FileVault user has no working SecureToken, so FileVault may ask for an old password.",
			"Ask IT to grant a SecureToken (sysadminctl -secureTokenOn) and then run `lockstep sync`.")
	} else {
		add(localapi.PlaceFileVault, true, "FileVault is on and this account holds a SecureToken.", "")
	}

	if exists, err := mac.Keychain.Exists(acct); err != nil {
		add(localapi.PlaceKeychain, false, "Could not check the login keychain: "+err.Error(), "Run `lockstep diagnose`.")
	} else if !exists {
		add(localapi.PlaceKeychain, true, "No login keychain yet; macOS creates one at the next login.", "")
	} else if !password.Empty() {
		if ok, err := mac.Keychain.Opens(ctx, acct, password); err != nil || !ok {
			add(localapi.PlaceKeychain, false, "The login keychain does not open with this password.",
				"Run `lockstep sync` and give the keychain's older password as the previous one, or `lockstep sync --forgot-previous` to move it aside.")
		} else {
			add(localapi.PlaceKeychain, true, "The login keychain opens with this password.", "")
		}
	} else {
		add(localapi.PlaceKeychain, true, "The login keychain exists (give --password to check that it opens).", "")
	}

	// A missing service account is a choice, not a fault; a broken one is.
	sa := mac.Service.Status(ctx)
	switch {
	case sa.Usable:
		add("service_account", true, "Service account: "+serviceText(sa), "")
	case !sa.Present:
		add("service_account", true, "Service account: not set up, so a forgotten previous password cannot be recovered on this Mac (IT: `sudo lockstep service-account setup`).", "")
	default:
		add("service_account", false, "Service account: "+serviceText(sa),
			"IT can repair it with `sudo lockstep service-account setup` (or `rotate` when only its password is wrong).")
	}
	return rep
}

func serviceText(s localapi.ServiceAccountStatus) string {
	switch {
	case s.Usable:
		return "ready; a forgotten previous password can be reset."
	case !s.Present:
		return "not set up."
	case !s.SecureToken:
		return "present but without a SecureToken."
	}
	if s.Detail != "" {
		return s.Detail
	}
	return "present but not usable."
}
