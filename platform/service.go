package platform

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Service account defaults.
const (
	ServiceAccountName     = "_lockstep"
	ServiceAccountRealName = "Lockstep"
	// SecretService is the keychain service (and secret store namespace) of
	// the daemon's own secrets.
	SecretService = "dev.lockstep.agent"
)

// Secret store keys: the current password, and a new one while a change is
// in flight (so a crash mid-rotation never loses the working password).
const (
	secretCurrent = "service-account"
	secretPending = "service-account.pending"
)

// ServiceAccount manages the hidden administrator _lockstep: an admin with
// a SecureToken whose random password only the daemon knows (kept in a
// SecretStore), used to reset a user whose previous password is forgotten
// while keeping that user's SecureToken and FileVault unlock.
type ServiceAccount struct {
	Name     string
	RealName string
	r        *Runner
	acc      *Accounts
	fv       *FileVault
	store    SecretStore
}

// NewServiceAccount returns the _lockstep service account using r, keeping
// its password in store.
func NewServiceAccount(r *Runner, store SecretStore) *ServiceAccount {
	return &ServiceAccount{Name: ServiceAccountName, RealName: ServiceAccountRealName, r: r, acc: NewAccounts(r), fv: NewFileVault(r), store: store}
}

// ServiceStatus is what Status observed.
type ServiceStatus struct {
	Exists          bool
	UID             int
	Hidden          bool
	Admin           bool
	SecureToken     bool
	PasswordStored  bool
	PasswordWorks   bool // the stored password authenticates the account
	RotationPending bool // a new password awaits confirmation (after a crash)
}

// Ready reports whether the account can authorise resets.
func (s ServiceStatus) Ready() bool {
	return s.Exists && s.Hidden && s.Admin && s.SecureToken && s.PasswordWorks && !s.RotationPending
}

// Status observes the service account and its stored password.
func (s *ServiceAccount) Status(ctx context.Context) (ServiceStatus, error) {
	var st ServiceStatus
	a, err := s.acc.Lookup(ctx, s.Name)
	if errors.Is(err, ErrNoSuchUser) {
		_, perr := s.store.Get(secretPending)
		st.RotationPending = perr == nil
		_, cerr := s.store.Get(secretCurrent)
		st.PasswordStored = cerr == nil
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.Exists, st.UID, st.Hidden, st.Admin = true, a.UID, a.Hidden, a.Admin
	if st.SecureToken, err = s.fv.SecureTokenStatus(ctx, s.Name); err != nil {
		return st, err
	}
	if _, err := s.store.Get(secretPending); err == nil {
		st.RotationPending = true
	} else if !errors.Is(err, ErrSecretNotFound) {
		return st, err
	}
	pw, err := s.store.Get(secretCurrent)
	switch {
	case errors.Is(err, ErrSecretNotFound):
		return st, nil
	case err != nil:
		return st, err
	}
	defer wipe(pw)
	st.PasswordStored = true
	switch err := s.acc.VerifyPassword(ctx, s.Name, pw); {
	case err == nil:
		st.PasswordWorks = true
	case errors.Is(err, ErrWrongPassword), errors.Is(err, ErrUnusableSecret):
	default:
		return st, err
	}
	return st, nil
}

// recover finishes or rolls back a password change interrupted by a crash:
// whichever of the pending and current passwords authenticates becomes the
// current one. It returns the working password (the caller wipes it), or
// ErrServiceAccount when neither works.
func (s *ServiceAccount) recover(ctx context.Context) ([]byte, error) {
	pending, perr := s.store.Get(secretPending)
	if perr != nil && !errors.Is(perr, ErrSecretNotFound) {
		return nil, perr
	}
	current, cerr := s.store.Get(secretCurrent)
	if cerr != nil && !errors.Is(cerr, ErrSecretNotFound) {
		return nil, cerr
	}
	works := func(pw []byte) (bool, error) {
		if pw == nil {
			return false, nil
		}
		err := s.acc.VerifyPassword(ctx, s.Name, pw)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, ErrWrongPassword) || errors.Is(err, ErrUnusableSecret) {
			return false, nil
		}
		return false, err
	}
	if pending != nil {
		ok, err := works(pending)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := s.store.Put(secretCurrent, pending); err != nil {
				return nil, err
			}
			wipe(current)
			return pending, s.store.Delete(secretPending)
		}
		wipe(pending)
	}
	ok, err := works(current)
	if err != nil {
		return nil, err
	}
	if !ok {
		wipe(current)
		return nil, fmt.Errorf("%s: no stored password authenticates it: %w", s.Name, ErrServiceAccount)
	}
	if pending != nil {
		if err := s.store.Delete(secretPending); err != nil {
			return nil, err
		}
	}
	return current, nil
}

// Create makes the service account with a token administrator's
// credentials, or repairs it: a hidden admin (RealName "Lockstep", shell
// /usr/bin/false, home /var/empty) with a fresh random password (256 bits)
// and a SecureToken granted by that administrator, then refreshes Preboot.
// Each part is checked by observation; calling it again on a working account
// changes nothing.
func (s *ServiceAccount) Create(ctx context.Context, adminUser string, adminPW []byte) error {
	if err := checkSecret("admin password", adminPW); err != nil {
		return err
	}
	if err := s.acc.VerifyPassword(ctx, adminUser, adminPW); err != nil {
		return fmt.Errorf("administrator %s: %w", adminUser, err)
	}
	admin, err := s.acc.Lookup(ctx, adminUser)
	if err != nil {
		return err
	}
	if !admin.Admin {
		return fmt.Errorf("%s: %w", adminUser, ErrNotAdmin)
	}
	self := Account{Name: s.Name, RealName: s.RealName}
	if on, err := s.fv.SecureTokenStatus(ctx, adminUser); err != nil {
		return err
	} else if !on {
		return fmt.Errorf("administrator %s has no SecureToken: %w", adminUser, ErrNoSecureToken)
	}

	pw, err := s.ensureAccount(ctx, admin, adminPW)
	if err != nil {
		return err
	}
	defer wipe(pw)

	a, err := s.acc.Lookup(ctx, s.Name)
	if err != nil {
		return err
	}
	if !a.Hidden {
		if err := s.dscl(ctx, "-create", "/Users/"+s.Name, "IsHidden", "1"); err != nil {
			return err
		}
	}
	if !a.Admin {
		if err := s.dscl(ctx, "-append", "/Groups/admin", "GroupMembership", s.Name); err != nil {
			return err
		}
	}
	on, err := s.fv.SecureTokenStatus(ctx, s.Name)
	if err != nil {
		return err
	}
	if !on {
		res, err := s.r.Run(ctx, Cmd{
			Tool:     Sysadminctl,
			Args:     []string{"-adminUser", adminUser, "-adminPassword", "-", "-secureTokenOn", s.Name, "-password", "-"},
			Prompter: sysadminctlPrompter(admin, adminPW, self, pw, 1),
		})
		if err != nil {
			return err
		}
		if err := sysadminctlError("secureTokenOn", res); err != nil {
			return err
		}
		// "Done!" is printed even when the grant was silently refused.
		if on, err = s.fv.SecureTokenStatus(ctx, s.Name); err != nil {
			return err
		}
		if !on {
			return &ToolError{Tool: Sysadminctl, Verb: "secureTokenOn", Message: "no SecureToken after the grant",
				Stderr: res.stderrText(), Err: ErrNotApplied}
		}
	}
	a, err = s.acc.Lookup(ctx, s.Name)
	if err != nil {
		return err
	}
	if !a.Hidden || !a.Admin {
		return fmt.Errorf("%s: hidden=%t admin=%t after setup: %w", s.Name, a.Hidden, a.Admin, ErrNotApplied)
	}
	return s.fv.RefreshPreboot(ctx)
}

// ensureAccount makes sure the account exists and a stored password
// authenticates it, creating it or resetting its password (authorised by the
// token administrator) as needed. It returns the working password.
func (s *ServiceAccount) ensureAccount(ctx context.Context, admin Account, adminPW []byte) ([]byte, error) {
	acct, err := s.acc.record(ctx, s.Name)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNoSuchUser) {
		return nil, err
	}
	if exists {
		if pw, err := s.recover(ctx); err == nil {
			return pw, nil
		} else if !errors.Is(err, ErrServiceAccount) {
			return nil, err
		}
	}
	pw, err := randomPassword()
	if err != nil {
		return nil, err
	}
	// Stored as pending before any change, so a crash cannot lose it.
	if err := s.store.Put(secretPending, pw); err != nil {
		wipe(pw)
		return nil, err
	}
	if exists {
		_, err = s.acc.ResetPassword(ctx, acct, pw, admin, adminPW)
	} else {
		err = s.addUser(ctx, admin, adminPW, pw)
	}
	if err != nil {
		wipe(pw)
		return nil, err
	}
	if err := s.store.Put(secretCurrent, pw); err != nil {
		wipe(pw)
		return nil, err
	}
	if err := s.store.Delete(secretPending); err != nil {
		wipe(pw)
		return nil, err
	}
	return pw, nil
}

func (s *ServiceAccount) addUser(ctx context.Context, admin Account, adminPW, pw []byte) error {
	uids, err := s.acc.List(ctx)
	if err != nil {
		return err
	}
	used := map[int]bool{}
	for _, u := range uids {
		used[u] = true
	}
	uid := 0
	for c := 401; c < 500; c++ {
		if !used[c] {
			uid = c
			break
		}
	}
	if uid == 0 {
		return fmt.Errorf("no free UID in 401-499 for %s: %w", s.Name, ErrToolFailed)
	}
	res, err := s.r.Run(ctx, Cmd{
		Tool: Sysadminctl,
		Args: []string{"-addUser", s.Name, "-fullName", s.RealName, "-UID", strconv.Itoa(uid), "-GID", "20",
			"-shell", "/usr/bin/false", "-home", "/var/empty", "-password", "-", "-admin",
			"-adminUser", admin.Name, "-adminPassword", "-"},
		Prompter: sysadminctlPrompter(admin, adminPW, Account{Name: s.Name, RealName: s.RealName}, pw, 2),
	})
	if err != nil {
		return err
	}
	if err := sysadminctlError("addUser", res); err != nil {
		return err
	}
	if err := s.acc.VerifyPassword(ctx, s.Name, pw); err != nil {
		if errors.Is(err, ErrWrongPassword) || errors.Is(err, ErrNoSuchUser) {
			return &ToolError{Tool: Sysadminctl, Verb: "addUser", Message: "the new account does not authenticate",
				Stderr: res.stderrText(), Err: ErrNotApplied}
		}
		return err
	}
	return nil
}

func (s *ServiceAccount) dscl(ctx context.Context, args ...string) error {
	res, err := s.r.Run(ctx, Cmd{Tool: Dscl, Args: append([]string{"."}, args...)})
	if err != nil {
		return err
	}
	if res.Exit != 0 {
		return dsclFailure(args[0][1:], res)
	}
	return nil
}

// Rotate gives the service account a new random password by a change with
// the old one (which keeps its SecureToken), crash-safe: the new password is
// stored as pending before the change and becomes current only once it is
// verified; an interrupted rotation is finished or rolled back by the next
// call (recover). Preboot is refreshed afterwards (the account is a
// FileVault user).
func (s *ServiceAccount) Rotate(ctx context.Context) error {
	cur, err := s.recover(ctx)
	if err != nil {
		return err
	}
	defer wipe(cur)
	next, err := randomPassword()
	if err != nil {
		return err
	}
	defer wipe(next)
	if err := s.store.Put(secretPending, next); err != nil {
		return err
	}
	acct, err := s.acc.record(ctx, s.Name)
	if err != nil {
		return err
	}
	if _, err := s.acc.ChangePassword(ctx, acct, cur, next); err != nil {
		// Leave the pending password for recover unless the old one surely
		// still works.
		if verr := s.acc.VerifyPassword(ctx, s.Name, cur); verr == nil {
			_ = s.store.Delete(secretPending)
		}
		return fmt.Errorf("rotate %s: %w", s.Name, err)
	}
	if err := s.store.Put(secretCurrent, next); err != nil {
		return err
	}
	if err := s.store.Delete(secretPending); err != nil {
		return err
	}
	return s.fv.RefreshPreboot(ctx)
}

// ResetUserPassword resets user's password to newPW authorised by the
// service account (ResetPassword with _lockstep as the token administrator),
// for a user whose previous password is forgotten. The user's SecureToken
// and FileVault unlock follow the new password; the login keychain does not
// (move it aside and create a new one). The service account's stored
// password is not tried first unless a rotation was interrupted: a stale one
// fails the reset itself, and every try is a login the Mac counts.
func (s *ServiceAccount) ResetUserPassword(ctx context.Context, user Account, newPW []byte) (Verified, error) {
	var (
		pw  []byte
		err error
	)
	if _, perr := s.store.Get(secretPending); perr == nil {
		pw, err = s.recover(ctx)
	} else {
		pw, err = s.store.Get(secretCurrent)
		if errors.Is(err, ErrSecretNotFound) {
			err = fmt.Errorf("%s: no stored password: %w", s.Name, ErrServiceAccount)
		}
	}
	if err != nil {
		return Verified{}, err
	}
	defer wipe(pw)
	return s.acc.ResetPassword(ctx, user, newPW, Account{Name: s.Name, RealName: s.RealName}, pw)
}

// Remove deletes the service account (`sysadminctl -deleteUser _lockstep
// -keepHome`, its home being /var/empty), checks it is gone, refreshes
// Preboot and deletes its stored passwords.
func (s *ServiceAccount) Remove(ctx context.Context) error {
	_, err := s.acc.record(ctx, s.Name)
	switch {
	case err == nil:
		res, err := s.r.Run(ctx, Cmd{Tool: Sysadminctl, Args: []string{"-deleteUser", s.Name, "-keepHome"}})
		if err != nil {
			return err
		}
		if err := sysadminctlError("deleteUser", res); err != nil {
			return err
		}
		if _, err := s.acc.record(ctx, s.Name); !errors.Is(err, ErrNoSuchUser) {
			if err == nil {
				return &ToolError{Tool: Sysadminctl, Verb: "deleteUser", Message: "the account still exists", Stderr: res.stderrText(), Err: ErrNotApplied}
			}
			return err
		}
		if err := s.fv.RefreshPreboot(ctx); err != nil {
			return err
		}
	case !errors.Is(err, ErrNoSuchUser):
		return err
	}
	if err := s.store.Delete(secretPending); err != nil {
		return err
	}
	return s.store.Delete(secretCurrent)
}
