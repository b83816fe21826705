package macsim

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Layout of a simulated Mac rooted at a directory D:
//
//	D/state/state.json        the truth: accounts, groups, crypto users, faults
//	D/state/lock              flock(2) target serialising every invocation
//	D/state/invocations.jsonl append-only record of every tool run
//	D/tools/macsim            a hard link (or copy) of the simulator binary
//	D/tools/dscl ...          symlinks to macsim, one per simulated tool
//	D/root/Users/<name>/...   simulated home directories with keychain files
const (
	stateDirName   = "state"
	toolsDirName   = "tools"
	rootDirName    = "root"
	stateFileName  = "state.json"
	lockFileName   = "lock"
	recordFileName = "invocations.jsonl"
)

// hashIterations is low on purpose: the simulator only needs the stored
// passwords to be non-plaintext, not brute-force resistant, and every tool run
// hashes at least once.
const hashIterations = 1024

// Hash is a salted PBKDF2-SHA512 verifier of a password (the shape of macOS's
// SALTED-SHA512-PBKDF2 ShadowHash entry).
type Hash struct {
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	Entropy    []byte `json:"entropy"`
}

func newHash(password []byte) Hash {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	return Hash{Salt: salt, Iterations: hashIterations, Entropy: derive(password, salt, hashIterations, 64)}
}

func derive(password, salt []byte, iter, n int) []byte {
	k, err := pbkdf2.Key(sha512.New, string(password), salt, iter, n)
	if err != nil {
		panic(err) // only for invalid lengths, which are constants here
	}
	return k
}

// Matches reports whether password is the one this hash was made from.
func (h *Hash) Matches(password []byte) bool {
	if h == nil || len(h.Entropy) == 0 {
		return false
	}
	return hmac.Equal(derive(password, h.Salt, h.Iterations, len(h.Entropy)), h.Entropy)
}

// Record is one Open Directory record: its attributes exactly as dscl shows
// them, plus (for users) the shadow hash, which dscl never prints.
type Record struct {
	Attrs  map[string][]string `json:"attrs"`
	Shadow *Hash               `json:"shadow,omitempty"`
	// Policy is what dscl shows as accountPolicyData (users only).
	Policy *AccountPolicy `json:"account_policy,omitempty"`
	// Policies are the user's own content policies (pwpolicy -u).
	Policies []ContentPolicy `json:"policies,omitempty"`
	// MustChange: the user's newPasswordRequired policy is set; the right
	// password then fails -authonly with eDSAuthNewPasswordRequired until
	// it is changed.
	MustChange bool `json:"must_change,omitempty"`
}

// AccountPolicy is a user's accountPolicyData: when the account was made and
// its password last set, and its failed logins (seconds since 1970).
// Assumed: a successful authentication resets failedLoginCount.
type AccountPolicy struct {
	CreationTime         float64 `plist:"creationTime" json:"creation_time"`
	PasswordLastSetTime  float64 `plist:"passwordLastSetTime" json:"password_last_set_time"`
	FailedLoginCount     int     `plist:"failedLoginCount" json:"failed_login_count"`
	FailedLoginTimestamp float64 `plist:"failedLoginTimestamp,omitempty" json:"failed_login_timestamp,omitempty"`
}

func unixNow() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// setPassword replaces the shadow hash and records when.
func (r *Record) setPassword(h Hash) {
	r.Shadow = &h
	now := unixNow()
	if r.Policy == nil {
		r.Policy = &AccountPolicy{CreationTime: now}
	}
	r.Policy.PasswordLastSetTime = now
}

// authResult counts a failed login, or clears the count after a good one,
// and reports whether the record changed.
func (r *Record) authResult(ok bool) bool {
	if r.Policy == nil || (ok && r.Policy.FailedLoginCount == 0) {
		return false
	}
	if ok {
		r.Policy.FailedLoginCount = 0
		return true
	}
	r.Policy.FailedLoginCount++
	r.Policy.FailedLoginTimestamp = unixNow()
	return true
}

func (r *Record) first(key string) string {
	if v := r.Attrs[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (r *Record) has(key, value string) bool { return slices.Contains(r.Attrs[key], value) }

func (r *Record) hasToken() bool { return r.has("AuthenticationAuthority", ";SecureToken;") }

func (r *Record) disabled() bool {
	for _, v := range r.Attrs["AuthenticationAuthority"] {
		if v == ";DisabledUser;" || v == "DisabledUser" || strings.HasPrefix(v, ";DisabledUser;") {
			return true
		}
	}
	return false
}

func (r *Record) setToken(on bool) {
	aa := slices.DeleteFunc(slices.Clone(r.Attrs["AuthenticationAuthority"]), func(v string) bool { return v == ";SecureToken;" })
	if on {
		aa = append(aa, ";SecureToken;")
	}
	r.Attrs["AuthenticationAuthority"] = aa
}

func (r *Record) uid() int { n, _ := strconv.Atoi(r.first("UniqueID")); return n }
func (r *Record) gid() int { n, _ := strconv.Atoi(r.first("PrimaryGroupID")); return n }

// realName is what sysadminctl prints for a user: the full name, or the short
// name when the record has none.
func (r *Record) realName() string {
	if n := r.first("RealName"); n != "" {
		return n
	}
	return r.first("RecordName")
}

// CryptoUser is an APFS volume crypto user: a user whose own passphrase
// unlocks the volume key. For Open Directory users the UUID is the account's
// GeneratedUID and the passphrase normally equals the account password; it
// falls behind when the account is reset without a token holder.
type CryptoUser struct {
	UUID        string `json:"uuid"`
	Type        string `json:"type"`
	VolumeOwner bool   `json:"volume_owner"`
	Passphrase  *Hash  `json:"passphrase,omitempty"`
}

// Crypto user types as diskutil prints them.
const (
	TypeODUser       = "Local Open Directory User"
	TypeRecoveryUser = "Personal Recovery User"
	RecoveryUserUUID = "EBC6C064-0000-11AA-AA11-00306543ECAC"
)

// KeychainPrefs is a user's security preference domain (default keychain,
// keychain search list), kept per uid. There is no login keychain
// preference: login-keychain -s sets nothing (security.go, secPref).
type KeychainPrefs struct {
	Default string `json:"default,omitempty"`
	// SearchList is the user domain's keychain search list once set
	// (list-keychains -d user -s); unset, it is the login keychain.
	SearchList    []string `json:"search_list,omitempty"`
	SearchListSet bool     `json:"search_list_set,omitempty"`
}

// State is everything the simulated Mac knows. It is saved as JSON in
// D/state/state.json and only changed under the state lock.
type State struct {
	Version int    `json:"version"`
	Root    string `json:"root"` // D/root
	// RootUID is the simulated superuser besides uid 0: the uid that ran
	// Init when that was not root, so unprivileged test runs can act as the
	// root daemon.
	RootUID   int    `json:"root_uid"`
	FileVault bool   `json:"filevault"`
	Disk      string `json:"disk"`
	// HardwareUUID names the Local Items keychain folder.
	HardwareUUID string `json:"hardware_uuid,omitempty"`
	ConsoleUser  string `json:"console_user,omitempty"`
	MinPassword  int    `json:"min_password_length"`
	// Policies are the Mac's global content policies (pwpolicy).
	Policies []ContentPolicy `json:"policies,omitempty"`
	// MaxFailedLogins is the global policyAttributeMaximumFailedAuthentications
	// (0: none): that many consecutive failed logins lock the account.
	MaxFailedLogins int                   `json:"max_failed_logins,omitempty"`
	Users           map[string]*Record    `json:"users"`
	Groups          map[string]*Record    `json:"groups"`
	Crypto          []*CryptoUser         `json:"crypto_users"`
	CryptoGen       int                   `json:"crypto_generation"`
	PrebootGen      int                   `json:"preboot_generation"`
	KeychainPrefs   map[int]KeychainPrefs `json:"keychain_prefs,omitempty"`
	Faults          []*Fault              `json:"faults,omitempty"`
	DeferredCrash   *DeferredCrash        `json:"deferred_crash,omitempty"`
	// Sessions are the security sessions and the keychains unlocked in each
	// (session.go).
	Sessions []*Session `json:"sessions,omitempty"`
	// Acting are processes a simulated sudo made act as another uid
	// without root (sudo.go).
	Acting []ActingAs `json:"acting,omitempty"`
	// Quirks switch on behaviours of other macOS versions or assumed texts
	// (quirks.go).
	Quirks Quirks `json:"quirks,omitzero"`
}

// DeferredCrash is a crash-caller fault that fired in a tool run as a uid
// that may not signal its caller; the caller's next tool run delivers it.
type DeferredCrash struct {
	PID int `json:"pid"`
}

func (s *State) user(name string) *Record {
	if name == "" {
		return nil
	}
	return s.Users[name]
}

func (s *State) userByUID(uid int) *Record {
	for _, name := range s.userNames() {
		if r := s.Users[name]; r.uid() == uid {
			return r
		}
	}
	return nil
}

func (s *State) userNames() []string {
	names := make([]string, 0, len(s.Users))
	for n := range s.Users {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *State) isAdmin(name string) bool {
	g := s.Groups["admin"]
	return g != nil && g.has("GroupMembership", name)
}

func (s *State) setAdmin(name string, on bool) {
	g := s.Groups["admin"]
	if g == nil {
		return
	}
	u := s.Users[name]
	g.Attrs["GroupMembership"] = slices.DeleteFunc(g.Attrs["GroupMembership"], func(v string) bool { return v == name })
	if u != nil {
		guid := u.first("GeneratedUID")
		g.Attrs["GroupMembers"] = slices.DeleteFunc(g.Attrs["GroupMembers"], func(v string) bool { return v == guid })
		if on {
			g.Attrs["GroupMembers"] = append(g.Attrs["GroupMembers"], guid)
		}
	}
	if on {
		g.Attrs["GroupMembership"] = append(g.Attrs["GroupMembership"], name)
	}
}

func (s *State) crypto(uuid string) *CryptoUser {
	for _, c := range s.Crypto {
		if strings.EqualFold(c.UUID, uuid) {
			return c
		}
	}
	return nil
}

func (s *State) removeCrypto(uuid string) {
	s.Crypto = slices.DeleteFunc(s.Crypto, func(c *CryptoUser) bool { return strings.EqualFold(c.UUID, uuid) })
	s.CryptoGen++
}

// stateDir is where a simulated Mac keeps its state.
func stateDir(dir string) string { return filepath.Join(dir, stateDirName) }

// lockState takes the exclusive lock of the simulated Mac at dir. Every tool
// invocation and every CLI command holds it while it reads or changes state.
func lockState(dir string) (unlock func(), err error) {
	f, err := os.Open(filepath.Join(stateDir(dir), lockFileName))
	if err != nil {
		return nil, fmt.Errorf("open state lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock state: %w", err)
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

func loadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(stateDir(dir), stateFileName))
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if s.Users == nil {
		s.Users = map[string]*Record{}
	}
	if s.Groups == nil {
		s.Groups = map[string]*Record{}
	}
	if s.KeychainPrefs == nil {
		s.KeychainPrefs = map[int]KeychainPrefs{}
	}
	return &s, nil
}

func saveState(dir string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileAtomic(filepath.Join(stateDir(dir), stateFileName), append(b, '\n'), 0o666, -1, -1)
}

// writeFileAtomic writes data to a temporary file beside path, syncs it,
// gives it mode (and owner, when uid >= 0) and renames it over path, so a
// reader sees the old or the new content, never a mix.
func writeFileAtomic(path string, data []byte, mode os.FileMode, uid, gid int) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if uid >= 0 {
		if err := f.Chown(uid, gid); err != nil && !errors.Is(err, os.ErrPermission) {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}
