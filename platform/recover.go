package platform

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Getting a kept keychain back: after a forgotten-password sync the old
// login keychain (and its Local Items) sit aside in ~/Library/Keychains
// (MoveAside); when the user remembers the old password, the kept keychain
// is re-keyed to the current password in lockstepd's own session, with the
// same lock/unlock/control check as every other verdict (keychain.go), and
// then put back in the user's keychain search list and unlocked in the
// user's own session, where the list lives (facts K2). Nothing is renamed
// or deleted; the Local Items folder stays where it was (no sourced tool
// re-keys it).

// KeptKeychain is an old login keychain kept aside.
type KeptKeychain struct {
	// Name is its file name in ~/Library/Keychains; requests name a kept
	// keychain by it, never by a path.
	Name string
	Path string
	// KeptAt is when it was set aside: the UTC stamp Lockstep put in the
	// name, or, for one macOS renamed (login_renamed_N, §5.7), the file's
	// modification time.
	KeptAt time.Time
	// LocalItems are the Local Items folders set aside with it (same
	// stamp).
	LocalItems []string
}

var (
	// keptName is a login keychain set aside by Lockstep
	// (login_renamed_<stamp>[_N].keychain-db) or by macOS
	// (login_renamed_<N>.keychain-db, §5.7).
	keptName = regexp.MustCompile(`^login_renamed_([0-9A-Za-z_]+)\.keychain-db$`)
	// keptStamp is Lockstep's stamp, with the suffix renameAside adds when
	// the name was taken.
	keptStamp = regexp.MustCompile(`^(\d{8}T\d{6}Z)(?:_\d+)?$`)
	// keptLocalItems is a Local Items folder MoveAside set aside.
	keptLocalItems = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}_renamed_(\d{8}T\d{6}Z)(?:_\d+)?$`)
)

const stampLayout = "20060102T150405Z"

// Kept lists a's kept keychains, newest first: regular files owned by the
// user (symlinks are not followed), each with when it was set aside and the
// Local Items folders set aside with it. No keychain folder is no keychain.
func (k *Keychains) Kept(a Account) ([]KeptKeychain, error) {
	dir, err := k.openKeychainDir(a, false)
	if errors.Is(err, ErrKeychainMissing) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	names, err := dirNames(dir)
	if err != nil {
		return nil, fmt.Errorf("list keychains of %s: %w", a.Name, err)
	}
	kcDir := filepath.Join(a.Home, "Library", "Keychains")
	localItems := map[string][]string{}
	for _, name := range names {
		if m := keptLocalItems.FindStringSubmatch(name); m != nil {
			var st unix.Stat_t
			if unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				localItems[m[1]] = append(localItems[m[1]], filepath.Join(kcDir, name))
			}
		}
	}
	var out []KeptKeychain
	for _, name := range names {
		m := keptName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil ||
			st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != k.owner(a) {
			continue
		}
		kk := KeptKeychain{Name: name, Path: filepath.Join(kcDir, name), KeptAt: time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC()}
		if s := keptStamp.FindStringSubmatch(m[1]); s != nil {
			if at, err := time.Parse(stampLayout, s[1]); err == nil {
				kk.KeptAt = at
			}
			kk.LocalItems = slices.Sorted(slices.Values(localItems[s[1]]))
		}
		out = append(out, kk)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].KeptAt.Equal(out[j].KeptAt) {
			return out[i].KeptAt.After(out[j].KeptAt)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// kept finds the kept keychain called name; anything else is
// ErrKeychainMissing.
func (k *Keychains) kept(a Account, name string) (KeptKeychain, error) {
	all, err := k.Kept(a)
	if err != nil {
		return KeptKeychain{}, err
	}
	for _, kk := range all {
		if kk.Name == name {
			return kk, nil
		}
	}
	return KeptKeychain{}, fmt.Errorf("no kept keychain %q of %s: %w", name, a.Name, ErrKeychainMissing)
}

// OpensKept reports whether pw opens the kept keychain name, with the same
// check as Opens (a keychain left unlocked in any session cannot fool it).
func (k *Keychains) OpensKept(ctx context.Context, a Account, name string, pw []byte) (bool, error) {
	kk, err := k.kept(a, name)
	if err != nil {
		return false, err
	}
	return k.opensPath(ctx, a, kk.Path, pw)
}

// RekeyKept changes the kept keychain name from oldPW to newPW as Rekey
// does: set-keychain-password locks it first, so a wrong old password is
// ErrKeychainWrongPassword and changes nothing; then newPW must open it and
// oldPW must not.
func (k *Keychains) RekeyKept(ctx context.Context, a Account, name string, oldPW, newPW []byte) error {
	kk, err := k.kept(a, name)
	if err != nil {
		return err
	}
	return k.rekeyPath(ctx, a, kk.Path, oldPW, newPW)
}

// inUserSession runs `security ARGS` as a in a's own security session:
// `launchctl asuser UID sudo -u NAME security ARGS` (facts K3, K4), which is
// where the user's keychain search list is (K2) and where apps look for
// their items. launchctl asuser keeps root's uid, so sudo takes on the
// user's. stdin, which may hold a secret, reaches security only.
func (k *Keychains) inUserSession(ctx context.Context, a Account, verb string, stdin []byte, args ...string) (*Result, error) {
	sudo, err := k.r.Path(Sudo)
	if err != nil {
		return nil, err
	}
	security, err := k.r.Path(Security)
	if err != nil {
		return nil, err
	}
	argv := append([]string{"asuser", strconv.Itoa(a.UID), sudo, "-u", a.Name, security}, args...)
	res, err := k.r.Run(ctx, Cmd{Tool: Launchctl, Args: argv, Verb: verb, Stdin: stdin})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// SearchList is a's keychain search list in the user domain, as a's own
// session sees it (`list-keychains -d user`, K1).
func (k *Keychains) SearchList(ctx context.Context, a Account) ([]string, error) {
	res, err := k.inUserSession(ctx, a, "list-keychains", nil, "list-keychains", "-d", "user")
	if err != nil {
		return nil, err
	}
	if res.Exit != 0 {
		return nil, securityFailure("list-keychains", res)
	}
	return parseKeychainList(string(res.Stdout))
}

// parseKeychainList reads list-keychains' output: one keychain per line,
// its path in double quotes after four spaces (keychain_list.c, K1).
func parseKeychainList(out string) ([]string, error) {
	var list []string
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		p := strings.TrimSpace(l)
		if len(p) < 2 || p[0] != '"' || p[len(p)-1] != '"' {
			return nil, &ToolError{Tool: Security, Verb: "list-keychains", Stdout: clip(out),
				Message: fmt.Sprintf("unexpected line %q", l), Err: ErrToolFailed}
		}
		list = append(list, p[1:len(p)-1])
	}
	return list, nil
}

// InSearchList reports whether path is in a's search list.
func (k *Keychains) InSearchList(ctx context.Context, a Account, path string) (bool, error) {
	list, err := k.SearchList(ctx, a)
	if err != nil {
		return false, err
	}
	return slices.Contains(cleanPaths(list), filepath.Clean(path)), nil
}

func cleanPaths(list []string) []string {
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = filepath.Clean(p)
	}
	return out
}

// AddToSearchList puts the kept keychain name at the end of a's search
// list, keeping every keychain already there (-s replaces the whole list,
// K1), in a's own session, and reads the list back there to see that it
// took. It reports whether it added it: already there is done.
func (k *Keychains) AddToSearchList(ctx context.Context, a Account, name string) (bool, error) {
	kk, err := k.kept(a, name)
	if err != nil {
		return false, err
	}
	return k.addToSearchList(ctx, a, kk.Path)
}

// addToSearchList puts the keychain at path at the end of a's search list
// in a's own session unless it is there already, and reads the list back
// there; it reports whether it added it.
func (k *Keychains) addToSearchList(ctx context.Context, a Account, path string) (bool, error) {
	list, err := k.SearchList(ctx, a)
	if err != nil {
		return false, err
	}
	if slices.Contains(cleanPaths(list), filepath.Clean(path)) {
		return false, nil
	}
	want := append(slices.Clone(list), path)
	res, err := k.inUserSession(ctx, a, "list-keychains", nil, append([]string{"list-keychains", "-d", "user", "-s"}, want...)...)
	if err != nil {
		return true, err
	}
	if res.Exit != 0 {
		return true, securityFailure("list-keychains", res)
	}
	got, err := k.SearchList(ctx, a)
	if err != nil {
		return true, err
	}
	for _, p := range cleanPaths(want) {
		if !slices.Contains(cleanPaths(got), p) {
			return true, &ToolError{Tool: Security, Verb: "list-keychains",
				Message: fmt.Sprintf("the search list is %q after setting it to %q", got, want), Err: ErrNotApplied}
		}
	}
	return true, nil
}

// UnlockForUser unlocks the kept keychain name with pw in a's own session,
// so apps find its items without asking (other keychains than the login
// keychain are not unlocked at login, K5). It is an action, not a verdict:
// whether pw opens the keychain is known from OpensKept or RekeyKept, made
// in lockstepd's session; the user's session is only ever unlocked here,
// never locked. The password goes on stdin (`security -i`).
func (k *Keychains) UnlockForUser(ctx context.Context, a Account, name string, pw []byte) error {
	if err := checkSecret("keychain password", pw); err != nil {
		return err
	}
	kk, err := k.kept(a, name)
	if err != nil {
		return err
	}
	p := quoteSecurityArg([]byte(kk.Path))
	in := make([]byte, 0, len(p)+2*len(pw)+32)
	in = append(in, "unlock-keychain -p "...)
	in = appendSecurityArg(in, pw)
	in = append(in, " "+p+"\n"...)
	defer wipe(in)
	res, err := k.inUserSession(ctx, a, "unlock-keychain", in, "-i")
	if err != nil {
		return err
	}
	if res.Exit != 0 {
		return securityFailure("unlock-keychain", res)
	}
	return nil
}
