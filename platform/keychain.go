package platform

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// LoginKeychainName is the login keychain's file name in ~/Library/Keychains.
const LoginKeychainName = "login.keychain-db"

// Keychains works on a user's login keychain file, and on the "Local Items"
// folder beside it.
//
// In which security session this runs, and why. A keychain's unlocked state
// belongs to a security session, every child shares its parent's, and an
// unlocked keychain accepts any password (macos-tools.md §5.8). Every
// security(1) run here is a child of lockstepd, so it runs in lockstepd's own
// session (the one LaunchDaemons share), as the keychain's owner (uid, gid,
// HOME) on the file path, never in the logged-in user's GUI session through
// `launchctl asuser`:
//
//   - A verdict needs the keychain locked in the checking session just
//     before the unlock. In the user's GUI session the login keychain is
//     unlocked from login on, so a check there could only be made by locking
//     the keychain under a working user, which makes every app ask for it.
//     In lockstepd's session the checker locks, unlocks and locks again, and
//     the user's session never notices (DESIGN.md: no keychain verdict rests
//     on unlock-keychain's exit status alone; leave the user's session as it
//     was).
//   - A re-key (set-keychain-password) re-wraps the keychain's master key
//     under the new password; the key itself does not change, so the user's
//     session keeps the keychain unlocked and saved passwords keep working
//     without a prompt.
//   - §9's advice to do keychain work in the user's session is about the
//     keychain search list, which is per session (§5.4). Putting a kept
//     keychain back (recover.go) and making sure a new login keychain is
//     listed (Create) are what touch the search list, and they do so in
//     the user's session (`launchctl asuser`, then `sudo -u`). No keychain
//     preference is set from lockstepd's session (see Create).
//
// Every verdict comes from one `security -i` run (commands on stdin, so no
// password reaches argv) that locks the keychain, unlocks it with the
// password, locks it again and unlocks it with a control password that is
// certainly wrong (a random one, or the old password after a re-key): the
// control must be refused, or the verdict cannot be trusted and the check
// fails loudly (ErrCannotVerify). This also catches the reported macOS 26.4
// regression in which a locked keychain takes any password. The keychain is
// left locked in lockstepd's session. One mutex keeps this process's checks
// from interleaving in the shared session.
type Keychains struct {
	r   *Runner
	now func() time.Time
	mu  sync.Mutex
}

// NewKeychains returns Keychains using r.
func NewKeychains(r *Runner) *Keychains {
	return &Keychains{r: r, now: time.Now}
}

func loginKeychainPath(a Account) string {
	return filepath.Join(a.Home, "Library", "Keychains", LoginKeychainName)
}

// Path is a's login keychain path (from the account's home in Open
// Directory).
func (k *Keychains) Path(a Account) string { return loginKeychainPath(a) }

// Exists reports whether a has a login keychain file.
func (k *Keychains) Exists(a Account) (bool, error) {
	fi, err := os.Lstat(loginKeychainPath(a))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("keychain of %s: %w", a.Name, err)
	}
	return fi.Mode().IsRegular(), nil
}

func securityFailure(verb string, res *Result) error {
	status, sentinel := securitySentinel(res.Exit)
	_, msg := parseSecurityError(string(res.Stderr))
	return &ToolError{Tool: Security, Verb: verb, Exit: res.Exit, Status: status, Message: msg,
		Stdout: res.stdoutText(), Stderr: res.stderrText(), Err: sentinel}
}

// Opens reports whether pw opens a's login keychain, whatever any session's
// unlock state (see Keychains). A wrong password is (false, nil); a missing
// keychain is ErrKeychainMissing; a check that a certainly wrong password
// passed is ErrCannotVerify.
func (k *Keychains) Opens(ctx context.Context, a Account, pw []byte) (bool, error) {
	return k.opensPath(ctx, a, loginKeychainPath(a), pw)
}

// opensPath is Opens for the keychain file at path.
func (k *Keychains) opensPath(ctx context.Context, a Account, path string, pw []byte) (bool, error) {
	if err := checkSecret("keychain password", pw); err != nil {
		return false, err
	}
	control, err := randomPassword()
	if err != nil {
		return false, err
	}
	defer wipe(control)
	k.mu.Lock()
	defer k.mu.Unlock()
	v, err := k.check(ctx, a, path, pw, control)
	if err != nil {
		return false, err
	}
	if v.controlOpens {
		return false, errUntrusted("check-keychain")
	}
	return v.opens, nil
}

// verdict is what one check batch observed.
type verdict struct {
	opens        bool // the password opened the keychain
	controlOpens bool // so did the control password
}

// check runs the lock/unlock/lock/unlock(control) batch on path. The caller
// holds k.mu.
func (k *Keychains) check(ctx context.Context, a Account, path string, pw, control []byte) (verdict, error) {
	p := quoteSecurityArg([]byte(path))
	// Sized once, and the passwords quoted straight into it: a buffer that
	// grows, or a quoted copy, would leave the password behind unwiped.
	in := make([]byte, 0, 4*len(p)+2*(len(pw)+len(control))+64)
	in = append(in, "lock-keychain "+p+"\nunlock-keychain -p "...)
	in = appendSecurityArg(in, pw)
	in = append(in, " "+p+"\nlock-keychain "+p+"\nunlock-keychain -p "...)
	in = appendSecurityArg(in, control)
	in = append(in, " "+p+"\n"...)
	defer wipe(in)
	res, err := k.r.Run(ctx, Cmd{Tool: Security, Args: []string{"-i"}, Verb: "check-keychain", Stdin: in, As: a.Credential()})
	if err != nil {
		return verdict{}, err
	}
	return checkVerdict(res)
}

// returnedLine is security -i's report of a failing command:
// "<command as typed>: returned <signed OSStatus>" (security.c; facts §7).
var returnedLine = regexp.MustCompile(`(?m)^(\S+): returned (-?\d+)\s*$`)

// checkVerdict reads a check batch's result. security -i reports each
// failing command on its own line and exits with the last command's status,
// the control's unlock; which unlocks failed, and why, says what the
// password did.
func checkVerdict(res *Result) (verdict, error) {
	var unlocks []int
	for _, m := range returnedLine.FindAllStringSubmatch(string(res.Stderr), -1) {
		status, _ := strconv.Atoi(m[2])
		switch m[1] {
		case "unlock-keychain":
			unlocks = append(unlocks, status)
		case "lock-keychain":
			return verdict{}, securityFailure("check-keychain", res)
		}
	}
	failure := func() (verdict, error) { return verdict{}, securityFailure("check-keychain", res) }
	// unlockFailure is an unlock refused for another reason than the
	// password (interaction not allowed, ...): no verdict.
	unlockFailure := func(status int) (verdict, error) {
		_, sentinel := securitySentinel(osStatusExit(status))
		_, msg := parseSecurityError(string(res.Stderr))
		return verdict{}, &ToolError{Tool: Security, Verb: "check-keychain", Exit: res.Exit, Status: status, Message: msg,
			Stdout: res.stdoutText(), Stderr: res.stderrText(), Err: sentinel}
	}
	unexpected := func() (verdict, error) {
		return verdict{}, &ToolError{Tool: Security, Verb: "check-keychain", Exit: res.Exit, Stderr: res.stderrText(),
			Message: fmt.Sprintf("unexpected result: exit %d with %d failed unlocks", res.Exit, len(unlocks)), Err: ErrCannotVerify}
	}
	// wrongPassword: a refusal that says the password is wrong, not
	// something else (locked screen, interaction not allowed, ...).
	wrongPassword := func(status int) bool { return status == errSecAuthFailed }
	switch {
	case res.Exit == osStatusExit(errSecNoSuchKeychain):
		return failure()
	case res.Exit == osStatusExit(errSecAuthFailed) && len(unlocks) == 1 && wrongPassword(unlocks[0]):
		return verdict{opens: true}, nil
	case res.Exit == osStatusExit(errSecAuthFailed) && len(unlocks) == 2 && wrongPassword(unlocks[1]):
		if !wrongPassword(unlocks[0]) {
			return unlockFailure(unlocks[0])
		}
		return verdict{}, nil
	case res.Exit == 0 && len(unlocks) == 0:
		return verdict{opens: true, controlOpens: true}, nil
	case res.Exit == 0 && len(unlocks) == 1:
		if !wrongPassword(unlocks[0]) {
			return unlockFailure(unlocks[0])
		}
		return verdict{controlOpens: true}, nil
	case res.Exit != 0 && res.Exit != osStatusExit(errSecAuthFailed):
		return failure()
	}
	return unexpected()
}

// errUntrusted is the failure of a check whose control password, certainly
// wrong, opened the keychain.
func errUntrusted(verb string) error {
	return &ToolError{Tool: Security, Verb: verb,
		Message: "the keychain opened with a password that is certainly wrong, so no check of it can be trusted", Err: ErrCannotVerify}
}

// quoteSecurityArg quotes one word that is no secret (a path) for a
// `security -i` command line.
func quoteSecurityArg(b []byte) string { return string(appendSecurityArg(nil, b)) }

// appendSecurityArg appends b to dst quoted for a `security -i` command
// line: in double quotes, with '"' and '\' escaped by a backslash
// (split_line in security.c). Given room, it writes a secret into dst
// only, which the caller wipes.
func appendSecurityArg(dst, b []byte) []byte {
	dst = append(dst, '"')
	for _, c := range b {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// Rekey changes the login keychain's password from oldPW to newPW
// (`security set-keychain-password PATH`, stdin "old\nnew\nnew\n", §5.2),
// so every item survives, then checks that newPW opens it and oldPW no
// longer does (the old password is the check's control). set-keychain-password
// locks the keychain first, so a wrong old password is refused
// (ErrKeychainWrongPassword) even when the keychain was unlocked.
func (k *Keychains) Rekey(ctx context.Context, a Account, oldPW, newPW []byte) error {
	return k.rekeyPath(ctx, a, loginKeychainPath(a), oldPW, newPW)
}

// rekeyPath is Rekey for the keychain file at path.
func (k *Keychains) rekeyPath(ctx context.Context, a Account, path string, oldPW, newPW []byte) error {
	if err := checkSecret("old keychain password", oldPW); err != nil {
		return err
	}
	if err := checkSecret("new keychain password", newPW); err != nil {
		return err
	}
	in := lines(oldPW, newPW, newPW)
	defer wipe(in)
	k.mu.Lock()
	defer k.mu.Unlock()
	res, err := k.r.Run(ctx, Cmd{Tool: Security, Args: []string{"set-keychain-password", path}, Stdin: in, As: a.Credential()})
	if err != nil {
		return err
	}
	if res.Exit != 0 {
		return securityFailure("set-keychain-password", res)
	}
	v, err := k.check(ctx, a, path, newPW, oldPW)
	switch {
	case err != nil:
		return err
	case v.opens && v.controlOpens:
		return errUntrusted("set-keychain-password")
	case v.controlOpens:
		return &ToolError{Tool: Security, Verb: "set-keychain-password", Message: "the previous password still opens the keychain after the re-key", Err: ErrNotApplied}
	case !v.opens:
		return &ToolError{Tool: Security, Verb: "set-keychain-password", Message: "the new password does not open the keychain", Err: ErrNotApplied}
	}
	return nil
}

// Moved says where MoveAside put a user's old keychain files.
type Moved struct {
	// Login is the old login keychain's new path.
	Login string
	// LocalItems are the old "Local Items" folders' new paths.
	LocalItems []string
}

// localItemsName matches a "Local Items" keychain folder:
// ~/Library/Keychains/<Hardware UUID>/ (§5.5).
var localItemsName = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// MoveAside renames a's login keychain to
// login_renamed_<UTC timestamp>.keychain-db, and every "Local Items" folder
// (named by a hardware UUID, sealed by the same old password) to
// <UUID>_renamed_<timestamp>, in the same directory. It never deletes and
// never overwrites: each rename refuses an existing target and takes the
// next free name. Directories are walked without following symlinks and must
// be owned by the user, so a user cannot point the daemon elsewhere. A login
// keychain already gone (a repeated run) is not an error when Local Items are
// still to move; with neither it is ErrKeychainMissing.
func (k *Keychains) MoveAside(ctx context.Context, a Account) (Moved, error) {
	var out Moved
	dir, err := k.openKeychainDir(a, false)
	if err != nil {
		return out, err
	}
	defer unix.Close(dir)
	stamp := k.now().UTC().Format("20060102T150405Z")
	kcDir := filepath.Join(a.Home, "Library", "Keychains")
	names, err := dirNames(dir)
	if err != nil {
		return out, fmt.Errorf("list %s: %w", kcDir, err)
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		switch {
		case name == LoginKeychainName && st.Mode&unix.S_IFMT == unix.S_IFREG:
			moved, err := renameAside(dir, name, "login_renamed_"+stamp, ".keychain-db")
			if err != nil {
				return out, fmt.Errorf("move keychain aside: %w", err)
			}
			out.Login = filepath.Join(kcDir, moved)
		case localItemsName.MatchString(name) && st.Mode&unix.S_IFMT == unix.S_IFDIR:
			if int(st.Uid) != k.owner(a) {
				return out, fmt.Errorf("%s is owned by uid %d, not %d: %w", filepath.Join(kcDir, name), st.Uid, k.owner(a), ErrPermission)
			}
			moved, err := renameAside(dir, name, name+"_renamed_"+stamp, "")
			if err != nil {
				return out, fmt.Errorf("move Local Items aside: %w", err)
			}
			out.LocalItems = append(out.LocalItems, filepath.Join(kcDir, moved))
		}
	}
	if out.Login == "" && len(out.LocalItems) == 0 {
		return out, fmt.Errorf("%s: %w", loginKeychainPath(a), ErrKeychainMissing)
	}
	return out, nil
}

// renameAside renames name in dir to base+suffix, or base_N+suffix when that
// is taken, never replacing anything, and returns the name it took.
func renameAside(dir int, name, base, suffix string) (string, error) {
	for i := 1; i < 1000; i++ {
		to := base + suffix
		if i > 1 {
			to = fmt.Sprintf("%s_%d%s", base, i, suffix)
		}
		err := renameNoReplace(dir, name, to)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", err
		}
		return to, nil
	}
	return "", fmt.Errorf("no free name for %s", base)
}

func dirNames(fd int) ([]string, error) {
	d, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(d), "keychains")
	defer f.Close()
	return f.Readdirnames(-1)
}

// Create makes a new login keychain with password pw for a
// (`security create-keychain PATH` answering its two prompts on stdin),
// checks that pw opens it, and makes sure it is in a's keychain search list
// as a's own session sees it (LoginInSearchList). It refuses to replace an
// existing file (ErrKeychainExists): move it aside first.
//
// It sets no login or default keychain preference, and why:
//
//   - The login keychain is found by its standard path,
//     ~/Library/Keychains/login.keychain-db (§5.5): without a LoginKeychain
//     preference Security takes ~/Library/Keychains/login.keychain
//     (DLDbListCFPref::LoginDLDbIdentifier) and opens login.keychain-db in
//     its place (StorageManager::mungeDLDbIdentifier), and the new keychain
//     is made at that path. `security login-keychain -s` could not set it
//     anyway: keychain_login compiles it out ("#if 0 ... #else result = 1;
//     #endif", so it exits 1 and sets nothing; apple-open-source/macos
//     SecurityTool/keychain_list.c; facts issue 15 K1).
//   - The default keychain preference names a keychain by its path (the
//     DbName of a DLDbIdentifier), and with none set the default is the
//     login keychain when its file exists (DLDbListCFPref::
//     defaultDLDbIdentifier; save() even drops the key when it is the login
//     keychain). MoveAside renames the file under the preference, and the
//     new keychain takes the old path, so a default that was the login
//     keychain is the new one without a `default-keychain -s`; a default
//     the user chose elsewhere stays theirs. At each login macOS resets a
//     default that is not in the search list to the login keychain
//     (StorageManager::login: "make sure that the default keychain is in
//     the search list; if not, reset the default to login.keychain").
//     Sources: apple-open-source/macos
//     Security/OSX/libsecurity_keychain/lib/DLDBListCFPref.cpp and
//     StorageManager.cpp. Run from lockstepd's session it would not even
//     reach the user: in the root session Security uses the system
//     preference domain (StorageManager's defaultPreferenceDomain; K1, K2).
//   - The search list names keychains by path too, so it still lists the
//     login keychain unless the user took it out; macOS adds it back at the
//     next login (StorageManager::login: "make sure that login.keychain is
//     in the search list"). Create does it now, for the session the user is
//     in, the way a kept keychain is put back (recover.go: read, set with it
//     appended, read back, in the user's session).
func (k *Keychains) Create(ctx context.Context, a Account, pw []byte) (string, error) {
	if err := checkSecret("keychain password", pw); err != nil {
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
	if err := k.create(ctx, a, path, pw); err != nil {
		return path, err
	}
	if _, err := k.LoginInSearchList(ctx, a); err != nil {
		return path, fmt.Errorf("the new keychain in the search list: %w", err)
	}
	return path, nil
}

// create runs create-keychain for path and checks that pw opens the new
// keychain.
func (k *Keychains) create(ctx context.Context, a Account, path string, pw []byte) error {
	in := lines(pw, pw)
	defer wipe(in)
	k.mu.Lock()
	defer k.mu.Unlock()
	res, err := k.r.Run(ctx, Cmd{Tool: Security, Args: []string{"create-keychain", path}, Stdin: in, As: a.Credential()})
	if err != nil {
		return err
	}
	if res.Exit != 0 {
		return securityFailure("create-keychain", res)
	}
	control, err := randomPassword()
	if err != nil {
		return err
	}
	defer wipe(control)
	v, err := k.check(ctx, a, path, pw, control)
	if err != nil {
		return err
	}
	if v.controlOpens {
		return errUntrusted("create-keychain")
	}
	if !v.opens {
		return &ToolError{Tool: Security, Verb: "create-keychain", Message: "the password does not open the new keychain", Err: ErrNotApplied}
	}
	return nil
}

// LoginInSearchList makes sure a's login keychain is in a's keychain search
// list, in a's own session, and reads the list back there (AddToSearchList's
// way); it reports whether it added it. A login keychain already listed,
// the usual case, costs one read.
func (k *Keychains) LoginInSearchList(ctx context.Context, a Account) (bool, error) {
	return k.addToSearchList(ctx, a, loginKeychainPath(a))
}

// owner is the uid a user's keychain directories must belong to.
func (k *Keychains) owner(a Account) int {
	if k.r.cfg.RunUserStepsAsSelf {
		return os.Geteuid()
	}
	return a.UID
}

// openKeychainDir opens <home>/Library/Keychains without following
// symlinks, checking that each directory belongs to the user (creating the
// missing ones, 0700, owned by the user, when create is set).
func (k *Keychains) openKeychainDir(a Account, create bool) (int, error) {
	owner := k.owner(a)
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
