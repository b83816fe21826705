package platform

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// LoginKeychainName is the login keychain's file name in ~/Library/Keychains.
const LoginKeychainName = "login.keychain-db"

// Keychains works on a user's login keychain file. Every security(1) run is
// made as the keychain's owner (uid, gid, HOME) on the file path, never on
// the search list of whoever runs the daemon.
type Keychains struct {
	r   *Runner
	acc *Accounts
	now func() time.Time
}

// NewKeychains returns Keychains using r.
func NewKeychains(r *Runner) *Keychains {
	return &Keychains{r: r, acc: NewAccounts(r), now: time.Now}
}

func loginKeychainPath(a Account) string {
	return filepath.Join(a.Home, "Library", "Keychains", LoginKeychainName)
}

// Path is user's login keychain path (from the account's home in Open
// Directory).
func (k *Keychains) Path(ctx context.Context, user string) (string, error) {
	a, err := k.acc.record(ctx, user)
	if err != nil {
		return "", err
	}
	return loginKeychainPath(a), nil
}

// Exists reports whether user has a login keychain file.
func (k *Keychains) Exists(ctx context.Context, user string) (bool, error) {
	a, err := k.acc.record(ctx, user)
	if err != nil {
		return false, err
	}
	fi, err := os.Lstat(loginKeychainPath(a))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("keychain of %s: %w", user, err)
	}
	return fi.Mode().IsRegular(), nil
}

func securityFailure(verb string, res *Result) error {
	status, sentinel := securitySentinel(res.Exit)
	_, msg := parseSecurityError(string(res.Stderr))
	return &ToolError{Tool: Security, Verb: verb, Exit: res.Exit, Status: status, Message: msg,
		Stdout: res.stdoutText(), Stderr: res.stderrText(), Err: sentinel}
}

// Opens reports whether pw opens user's login keychain
// (`security unlock-keychain PATH`, the password answering its prompt on
// stdin). A wrong password is (false, nil); a missing keychain is
// ErrKeychainMissing.
func (k *Keychains) Opens(ctx context.Context, user string, pw []byte) (bool, error) {
	if err := checkSecret("keychain password", pw); err != nil {
		return false, err
	}
	a, err := k.acc.record(ctx, user)
	if err != nil {
		return false, err
	}
	return k.opens(ctx, a, pw)
}

func (k *Keychains) opens(ctx context.Context, a Account, pw []byte) (bool, error) {
	in := lines(pw)
	defer wipe(in)
	res, err := k.r.Run(ctx, Cmd{Tool: Security, Args: []string{"unlock-keychain", loginKeychainPath(a)}, Stdin: in, As: a.Credential()})
	if err != nil {
		return false, err
	}
	if res.Exit == 0 {
		return true, nil
	}
	ferr := securityFailure("unlock-keychain", res)
	if errors.Is(ferr, ErrKeychainWrongPassword) {
		return false, nil
	}
	return false, ferr
}

// Rekey changes the login keychain's password from oldPW to newPW
// (`security set-keychain-password PATH`, stdin "old\nnew\nnew\n", §5.2), so
// every item survives, then checks that newPW opens it.
func (k *Keychains) Rekey(ctx context.Context, user string, oldPW, newPW []byte) error {
	if err := checkSecret("old keychain password", oldPW); err != nil {
		return err
	}
	if err := checkSecret("new keychain password", newPW); err != nil {
		return err
	}
	a, err := k.acc.record(ctx, user)
	if err != nil {
		return err
	}
	in := lines(oldPW, newPW, newPW)
	defer wipe(in)
	res, err := k.r.Run(ctx, Cmd{Tool: Security, Args: []string{"set-keychain-password", loginKeychainPath(a)}, Stdin: in, As: a.Credential()})
	if err != nil {
		return err
	}
	if res.Exit != 0 {
		return securityFailure("set-keychain-password", res)
	}
	ok, err := k.opens(ctx, a, newPW)
	if err != nil {
		return err
	}
	if !ok {
		return &ToolError{Tool: Security, Verb: "set-keychain-password", Message: "the new password does not open the keychain", Err: ErrNotApplied}
	}
	return nil
}

// MoveAside renames user's login keychain to
// login_renamed_<UTC timestamp>.keychain-db in the same directory and
// returns the new path. It never deletes and never overwrites: the new name
// is taken with link(2), which fails if it exists, before the old name is
// removed. Directories are walked without following symlinks and must be
// owned by the user, so a user cannot point the daemon elsewhere.
func (k *Keychains) MoveAside(ctx context.Context, user string) (string, error) {
	a, err := k.acc.record(ctx, user)
	if err != nil {
		return "", err
	}
	dir, err := k.openKeychainDir(a, false)
	if err != nil {
		return "", err
	}
	defer unix.Close(dir)
	var st unix.Stat_t
	if err := unix.Fstatat(dir, LoginKeychainName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return "", fmt.Errorf("%s: %w", loginKeychainPath(a), ErrKeychainMissing)
		}
		return "", fmt.Errorf("stat %s: %w", loginKeychainPath(a), err)
	}
	stamp := k.now().UTC().Format("20060102T150405Z")
	for i := 1; i < 1000; i++ {
		name := "login_renamed_" + stamp + ".keychain-db"
		if i > 1 {
			name = fmt.Sprintf("login_renamed_%s_%d.keychain-db", stamp, i)
		}
		err := unix.Linkat(dir, LoginKeychainName, dir, name, 0)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("move keychain aside: %w", err)
		}
		if err := unix.Unlinkat(dir, LoginKeychainName, 0); err != nil {
			return "", fmt.Errorf("move keychain aside: remove old name: %w", err)
		}
		return filepath.Join(a.Home, "Library", "Keychains", name), nil
	}
	return "", fmt.Errorf("move keychain aside: no free name for %s", stamp)
}

// Create makes a new login keychain with password pw for user
// (`security create-keychain PATH` answering its two prompts on stdin), makes
// it the user's login and default keychain, and checks that pw opens it. It
// refuses to replace an existing file (ErrKeychainExists): move it aside
// first.
func (k *Keychains) Create(ctx context.Context, user string, pw []byte) (string, error) {
	if err := checkSecret("keychain password", pw); err != nil {
		return "", err
	}
	a, err := k.acc.record(ctx, user)
	if err != nil {
		return "", err
	}
	dir, err := k.openKeychainDir(a, true)
	if err != nil {
		return "", err
	}
	unix.Close(dir)
	path := loginKeychainPath(a)
	if _, err := os.Lstat(path); err == nil {
		return "", fmt.Errorf("%s: %w", path, ErrKeychainExists)
	}
	in := lines(pw, pw)
	defer wipe(in)
	res, err := k.r.Run(ctx, Cmd{Tool: Security, Args: []string{"create-keychain", path}, Stdin: in, As: a.Credential()})
	if err != nil {
		return "", err
	}
	if res.Exit != 0 {
		return "", securityFailure("create-keychain", res)
	}
	for _, verb := range []string{"login-keychain", "default-keychain"} {
		res, err := k.r.Run(ctx, Cmd{Tool: Security, Args: []string{verb, "-d", "user", "-s", path}, As: a.Credential()})
		if err != nil {
			return path, err
		}
		if res.Exit != 0 {
			return path, securityFailure(verb, res)
		}
	}
	ok, err := k.opens(ctx, a, pw)
	if err != nil {
		return path, err
	}
	if !ok {
		return path, &ToolError{Tool: Security, Verb: "create-keychain", Message: "the password does not open the new keychain", Err: ErrNotApplied}
	}
	return path, nil
}

// openKeychainDir opens <home>/Library/Keychains without following
// symlinks, checking that each directory belongs to the user (creating the
// missing ones, 0700, owned by the user, when create is set).
func (k *Keychains) openKeychainDir(a Account, create bool) (int, error) {
	owner := a.UID
	if k.r.cfg.RunUserStepsAsSelf {
		owner = os.Geteuid()
	}
	fd, err := unix.Open(a.Home, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open home %s: %w", a.Home, err)
	}
	if err := checkOwner(fd, owner, a.Home); err != nil {
		unix.Close(fd)
		return -1, err
	}
	for _, name := range []string{"Library", "Keychains"} {
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, name, 0o700); err == nil || errors.Is(err, unix.EEXIST) {
				if os.Geteuid() == 0 {
					err = unix.Fchownat(fd, name, a.UID, a.GID, unix.AT_SYMLINK_NOFOLLOW)
				} else {
					err = nil
				}
			}
			if err == nil {
				next, err = unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return -1, fmt.Errorf("no %s in %s: %w", name, a.Home, ErrKeychainMissing)
			}
			return -1, fmt.Errorf("open %s in %s: %w", name, a.Home, err)
		}
		fd = next
		if err := checkOwner(fd, owner, name); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

func checkOwner(fd, uid int, what string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", what, err)
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("%s is owned by uid %d, not %d: %w", what, st.Uid, uid, ErrPermission)
	}
	return nil
}
