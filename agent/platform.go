package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/agent/config"
	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/platform"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// newPlatform builds the engine's view of the Mac from the platform layer,
// the key store for the device key, and the console-user lookup.
func newPlatform(cfg *config.Config, log *slog.Logger) (*engine.Mac, *secretStore, func(context.Context) (string, error), error) {
	r := platform.NewRunner(platform.Config{
		ToolsDir: cfg.ToolsDir,
		Log:      log.With("component", "platform"),
		// Only a simulated Mac run by a non-root developer may skip the
		// switch to the keychain owner's uid; the real daemon is root.
		RunUserStepsAsSelf: cfg.ToolsDir != "" && os.Geteuid() != 0,
	})
	store := platform.NewSystemSecretStore(platform.SecretService, filepath.Join(cfg.StateDir, "secrets"))
	m := &mac{
		accounts: platform.NewAccounts(r),
		keychain: platform.NewKeychains(r),
		fv:       platform.NewFileVault(r),
		service:  platform.NewServiceAccount(r, store),
	}
	console := platform.NewConsole(r)
	consoleUser := func(ctx context.Context) (string, error) {
		u, ok, err := console.User(ctx)
		if err != nil || !ok {
			return "", err
		}
		return u.Name, nil
	}
	return &engine.Mac{Accounts: m, Keychain: m, FileVault: m, Service: m}, &secretStore{store}, consoleUser, nil
}

// secretStore adapts platform.SecretStore to the session's KeyStore.
type secretStore struct{ platform.SecretStore }

// mac adapts the platform layer to the engine's interfaces and maps its
// errors to the engine's.
type mac struct {
	accounts *platform.Accounts
	keychain *platform.Keychains
	fv       *platform.FileVault
	service  *platform.ServiceAccount

	mu     sync.Mutex
	uids   map[int]string
	uidsAt time.Time
	sa     engine.ServiceStatus
	saAt   time.Time
}

// mapErr keeps the platform's error (and its tool text) and adds the
// engine's sentinel.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range []struct{ from, to error }{
		{platform.ErrWrongPassword, engine.ErrWrongPassword},
		{platform.ErrKeychainWrongPassword, engine.ErrWrongPassword},
		{platform.ErrPasswordExpired, engine.ErrMustChange},
		{platform.ErrAccountDisabled, engine.ErrAccountDisabled},
		{platform.ErrPolicy, engine.ErrPolicyRefused},
		{platform.ErrNoSuchUser, engine.ErrNoSuchUser},
		{platform.ErrNoSecureToken, engine.ErrNoSecureToken},
	} {
		if errors.Is(err, m.from) {
			return fmt.Errorf("%w: %w", m.to, err)
		}
	}
	return err
}

// account is the platform's view of an engine account: what the engine
// read at the start of the operation, passed down so no step reads the
// record again.
func account(a engine.LocalAccount) platform.Account {
	return platform.Account{Name: a.Name, RealName: a.RealName, UID: a.UID, GID: a.GID, Home: a.Home,
		GeneratedUID: a.GeneratedUID, SecureToken: a.SecureToken, Disabled: a.Disabled}
}

func verified(v platform.Verified) engine.Verified {
	return engine.Verified{SecureToken: v.SecureToken}
}

func (m *mac) Lookup(ctx context.Context, name string) (engine.LocalAccount, error) {
	a, err := m.accounts.Read(ctx, name)
	if err != nil {
		return engine.LocalAccount{}, mapErr(err)
	}
	return engine.LocalAccount{Name: a.Name, UID: a.UID, GID: a.GID, Home: a.Home, RealName: a.RealName,
		GeneratedUID: a.GeneratedUID, SecureToken: a.SecureToken, Disabled: a.Disabled, Mobile: a.Mobile,
		OriginalNodeName: a.OriginalNodeName, NetworkHome: a.NetworkHome, PasswordLastSet: a.PasswordLastSet}, nil
}

// unknownUIDRefresh bounds how often a uid missing from the account list
// refreshes it.
const unknownUIDRefresh = 10 * time.Second

// LookupUID maps a uid to its short name, from a list refreshed at most
// once a minute, and for a uid the list lacks at most every
// unknownUIDRefresh: an account made a moment ago is found soon, and a
// caller without an account (a daemon's uid, nobody) cannot make lockstepd
// run dscl as root on each request.
func (m *mac) LookupUID(ctx context.Context, uid int) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	age := time.Since(m.uidsAt)
	name, ok := m.uids[uid]
	switch {
	case ok && age < time.Minute:
		return name, nil
	case !ok && m.uids != nil && age < unknownUIDRefresh:
		return "", fmt.Errorf("uid %d: %w", uid, engine.ErrNoSuchUser)
	}
	list, err := m.accounts.List(ctx)
	if err != nil {
		return "", mapErr(err)
	}
	m.uids, m.uidsAt = map[int]string{}, time.Now()
	for name, id := range list {
		// Several names can share a uid (root and system aliases); keep the
		// shortest, which is the canonical one on macOS.
		if cur, ok := m.uids[id]; !ok || len(name) < len(cur) || (len(name) == len(cur) && name < cur) {
			m.uids[id] = name
		}
	}
	if name, ok := m.uids[uid]; ok {
		return name, nil
	}
	return "", fmt.Errorf("uid %d: %w", uid, engine.ErrNoSuchUser)
}

func (m *mac) Verify(ctx context.Context, name string, pw []byte) error {
	return mapErr(m.accounts.VerifyPassword(ctx, name, pw))
}

func (m *mac) Change(ctx context.Context, a engine.LocalAccount, old, new []byte) (engine.Verified, error) {
	v, err := m.accounts.ChangePassword(ctx, account(a), old, new)
	return verified(v), mapErr(err)
}

func (m *mac) PasswordRules(ctx context.Context, name string) ([]protocol.LocalRule, error) {
	rules, err := m.accounts.PasswordRules(ctx, name)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]protocol.LocalRule, 0, len(rules))
	for _, r := range rules {
		out = append(out, protocol.LocalRule{ID: r.ID, Descriptions: r.Descriptions, Pattern: r.Pattern})
	}
	return out, nil
}

func (m *mac) Exists(a engine.LocalAccount) (bool, error) {
	ok, err := m.keychain.Exists(account(a))
	return ok, mapErr(err)
}

func (m *mac) Opens(ctx context.Context, a engine.LocalAccount, pw []byte) (bool, error) {
	ok, err := m.keychain.Opens(ctx, account(a), pw)
	return ok, mapErr(err)
}

func (m *mac) Rekey(ctx context.Context, a engine.LocalAccount, old, new []byte) error {
	return mapErr(m.keychain.Rekey(ctx, account(a), old, new))
}

func (m *mac) MoveAside(ctx context.Context, a engine.LocalAccount) (engine.Moved, error) {
	mv, err := m.keychain.MoveAside(ctx, account(a))
	return engine.Moved{Login: mv.Login, LocalItems: mv.LocalItems}, mapErr(err)
}

func (m *mac) Create(ctx context.Context, a engine.LocalAccount, pw []byte) error {
	_, err := m.keychain.Create(ctx, account(a), pw)
	return mapErr(err)
}

func (m *mac) LoginInSearchList(ctx context.Context, a engine.LocalAccount) (bool, error) {
	added, err := m.keychain.LoginInSearchList(ctx, account(a))
	return added, mapErr(err)
}

func (m *mac) Kept(a engine.LocalAccount) ([]engine.KeptKeychain, error) {
	ks, err := m.keychain.Kept(account(a))
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]engine.KeptKeychain, 0, len(ks))
	for _, k := range ks {
		out = append(out, engine.KeptKeychain{Name: k.Name, Path: k.Path, KeptAt: k.KeptAt, LocalItems: k.LocalItems})
	}
	return out, nil
}

func (m *mac) OpensKept(ctx context.Context, a engine.LocalAccount, name string, pw []byte) (bool, error) {
	ok, err := m.keychain.OpensKept(ctx, account(a), name, pw)
	return ok, mapErr(err)
}

func (m *mac) RekeyKept(ctx context.Context, a engine.LocalAccount, name string, old, new []byte) error {
	return mapErr(m.keychain.RekeyKept(ctx, account(a), name, old, new))
}

func (m *mac) AddToSearchList(ctx context.Context, a engine.LocalAccount, name string) (bool, error) {
	added, err := m.keychain.AddToSearchList(ctx, account(a), name)
	return added, mapErr(err)
}

func (m *mac) UnlockForUser(ctx context.Context, a engine.LocalAccount, name string, pw []byte) error {
	return mapErr(m.keychain.UnlockForUser(ctx, account(a), name, pw))
}

func (m *mac) Active(ctx context.Context) (bool, error) {
	on, err := m.fv.IsActive(ctx)
	return on, mapErr(err)
}

func (m *mac) IsUser(ctx context.Context, name string) (bool, error) {
	ok, err := m.fv.IsFileVaultUser(ctx, name)
	return ok, mapErr(err)
}

func (m *mac) SecureToken(ctx context.Context, name string) (bool, error) {
	ok, err := m.fv.SecureTokenStatus(ctx, name)
	return ok, mapErr(err)
}

func (m *mac) RefreshPreboot(ctx context.Context) error { return mapErr(m.fv.RefreshPreboot(ctx)) }

// serviceStatusTTL is how long an observed service account status is
// reused. Observing it runs four tools, one of them an authentication of the
// hidden admin (a failed login when its stored password is stale), so a
// status is observed again only after this long or after Lockstep changed
// the account (setup, rotate, remove, a failed reset).
const serviceStatusTTL = 10 * time.Minute

func (m *mac) Status(ctx context.Context) engine.ServiceStatus {
	m.mu.Lock()
	if m.saAt != (time.Time{}) && time.Since(m.saAt) < serviceStatusTTL {
		st := m.sa
		m.mu.Unlock()
		return st
	}
	m.mu.Unlock()
	st := m.observeService(ctx)
	m.mu.Lock()
	m.sa, m.saAt = st, time.Now()
	m.mu.Unlock()
	return st
}

// forgetService drops the cached status, after a change to the account.
func (m *mac) forgetService() {
	m.mu.Lock()
	m.saAt = time.Time{}
	m.mu.Unlock()
}

func (m *mac) observeService(ctx context.Context) engine.ServiceStatus {
	st, err := m.service.Status(ctx)
	if err != nil {
		return engine.ServiceStatus{Problem: codes.ServiceUncheckable}
	}
	out := engine.ServiceStatus{Present: st.Exists, SecureToken: st.SecureToken, Usable: st.Ready()}
	switch {
	case !st.Exists:
		out.Problem = codes.ServiceNotSetUp
	case !st.SecureToken:
		out.Problem = codes.ServiceNoToken
	case !st.PasswordStored:
		out.Problem = codes.ServiceNotStored
	case !st.PasswordWorks:
		out.Problem = codes.ServiceWrongPassword
	case st.RotationPending:
		out.Problem = codes.ServiceRotationPending
	case !out.Usable:
		out.Problem = codes.ServiceNotUsable
	}
	return out
}

func (m *mac) Setup(ctx context.Context, adminUser string, adminPW []byte) error {
	defer m.forgetService()
	return mapErr(m.service.Create(ctx, adminUser, adminPW))
}

func (m *mac) Rotate(ctx context.Context) error {
	defer m.forgetService()
	return mapErr(m.service.Rotate(ctx))
}

func (m *mac) Remove(ctx context.Context) error {
	defer m.forgetService()
	return mapErr(m.service.Remove(ctx))
}

func (m *mac) Reset(ctx context.Context, a engine.LocalAccount, pw []byte) (engine.Verified, error) {
	v, err := m.service.ResetUserPassword(ctx, account(a), pw)
	if err != nil {
		m.forgetService()
	}
	return verified(v), mapErr(err)
}
