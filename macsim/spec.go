package macsim

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Spec describes a simulated Mac for Init. It is read from JSON by
// `macsim init --spec FILE`. Passwords appear in the spec in plain text (it is
// test input); the state keeps only salted PBKDF2 verifiers of them.
type Spec struct {
	// FileVault is whether FileVault is on (fdesetup isactive/status).
	FileVault bool `json:"filevault"`
	// Disk is the APFS volume diskutil names ("disk3s1s1" when empty).
	Disk string `json:"disk,omitempty"`
	// RecoveryKey adds the Personal Recovery User crypto user.
	RecoveryKey bool `json:"recovery_key,omitempty"`
	// ConsoleUser is who is at the screen: a short name, "loginwindow", or
	// empty for no console session at all.
	ConsoleUser string `json:"console_user,omitempty"`
	// MinPasswordLength is the local password policy; shorter new passwords
	// are refused with eDSAuthPasswordQualityCheckFailed. Default 4.
	MinPasswordLength int `json:"min_password_length,omitempty"`
	// PasswordPolicies replace the stock content policy (a minimum of
	// MinPasswordLength) with these global ones.
	PasswordPolicies []ContentPolicy `json:"password_policies,omitempty"`
	// MaxFailedLogins locks an account after that many failed logins in a
	// row (0: no limit).
	MaxFailedLogins int `json:"max_failed_logins,omitempty"`
	// Users are the local accounts (root is always added).
	Users []UserSpec `json:"users"`
}

// UserSpec is one local account of a Spec.
type UserSpec struct {
	Name         string `json:"name"`
	RealName     string `json:"real_name,omitempty"`
	UID          int    `json:"uid"`
	GID          int    `json:"gid,omitempty"` // default 20 (staff)
	GeneratedUID string `json:"generated_uid,omitempty"`
	Password     string `json:"password"`
	SecureToken  bool   `json:"secure_token,omitempty"`
	Admin        bool   `json:"admin,omitempty"`
	Hidden       bool   `json:"hidden,omitempty"`
	Disabled     bool   `json:"disabled,omitempty"`
	// FileVault makes the account an APFS crypto user; default: SecureToken.
	FileVault *bool `json:"filevault,omitempty"`
	// FileVaultPassword is the crypto user's passphrase; default: Password.
	// Set it different from Password to start with FileVault out of sync.
	FileVaultPassword string `json:"filevault_password,omitempty"`
	// Home defaults to D/root/Users/<name>.
	Home string `json:"home,omitempty"`
	// HomeDirectory is the record's HomeDirectory attribute (a network
	// home: "<home_dir><url>smb://…</url><path>…</path></home_dir>").
	HomeDirectory string `json:"home_directory,omitempty"`
	// MobileFrom makes the account a mobile account cached from that
	// directory node ("/Active Directory/CORP/corp.example.com").
	MobileFrom string `json:"mobile_from,omitempty"`
	// MustChangeLocal sets the user's newPasswordRequired policy.
	MustChangeLocal bool `json:"must_change_local,omitempty"`
	// PasswordPolicies are the user's own content policies.
	PasswordPolicies []ContentPolicy `json:"password_policies,omitempty"`
	// LocalItems creates ~/Library/Keychains/<this hardware UUID>/ with a
	// keychain-2.db, as macOS keeps the "Local Items" keychain.
	LocalItems bool   `json:"local_items,omitempty"`
	Shell      string `json:"shell,omitempty"`
	// Keychain describes ~/Library/Keychains/login.keychain-db; nil means a
	// keychain with the account password and two items.
	Keychain *KeychainSpec `json:"keychain,omitempty"`
}

// KeychainSpec describes a user's login keychain file.
type KeychainSpec struct {
	Absent   bool           `json:"absent,omitempty"`
	Password string         `json:"password,omitempty"` // default: the account password
	Items    []KeychainItem `json:"items,omitempty"`
}

// DefaultSpec is the Mac `macsim init` builds without --spec: FileVault on,
// a token-holding admin and a token-holding standard user at the console.
func DefaultSpec() Spec {
	return Spec{
		FileVault:   true,
		RecoveryKey: true,
		ConsoleUser: "alice",
		Users: []UserSpec{
			{Name: "admin", RealName: "Local Admin", UID: 501, Password: "admin-pass-1", SecureToken: true, Admin: true},
			{Name: "alice", RealName: "Alice Example", UID: 502, Password: "alice-pass-1", SecureToken: true},
		},
	}
}

var shortName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,243}$`)

func (sp *Spec) validate() error {
	seenName, seenUID := map[string]bool{"root": true}, map[int]bool{0: true}
	for _, u := range sp.Users {
		if !shortName.MatchString(u.Name) {
			return fmt.Errorf("user %q: invalid short name", u.Name)
		}
		if seenName[u.Name] {
			return fmt.Errorf("user %q: duplicate name", u.Name)
		}
		if u.UID <= 0 || seenUID[u.UID] {
			return fmt.Errorf("user %q: uid %d missing or duplicate", u.Name, u.UID)
		}
		if err := checkSpecPassword(u.Password); err != nil {
			return fmt.Errorf("user %q: %w", u.Name, err)
		}
		seenName[u.Name], seenUID[u.UID] = true, true
	}
	if c := sp.ConsoleUser; c != "" && c != "loginwindow" && !seenName[c] {
		return fmt.Errorf("console user %q is not a user", c)
	}
	return nil
}

func checkSpecPassword(pw string) error {
	if pw == "" || len(pw) > 128 || strings.ContainsAny(pw, "\n\r\x00") {
		return errors.New("password must be 1-128 bytes without newlines")
	}
	return nil
}

// Init builds a simulated Mac in dir from spec: state, simulated homes with
// real keychain files owned by each account's uid (when run as root), the
// state lock and the invocation record. It refuses a dir that already has
// state.
func Init(dir string, spec Spec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(stateDir(dir), stateFileName)); err == nil {
		return fmt.Errorf("%s already holds a simulated Mac", dir)
	}
	// The state is shared by every simulated uid (a user may change its own
	// password, and every run appends to the record), so it is world-writable:
	// the simulator enforces root-only operations itself, by uid.
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o755}, {stateDir(dir), 0o777}, {filepath.Join(dir, rootDirName), 0o755}, {filepath.Join(dir, rootDirName, "Users"), 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
	}
	for _, f := range []string{lockFileName, recordFileName} {
		p := filepath.Join(stateDir(dir), f)
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o666); err != nil {
			return err
		}
	}

	st := &State{
		Version:       1,
		Root:          filepath.Join(dir, rootDirName),
		RootUID:       os.Geteuid(),
		FileVault:     spec.FileVault,
		Disk:          spec.Disk,
		ConsoleUser:   spec.ConsoleUser,
		MinPassword:   spec.MinPasswordLength,
		Users:         map[string]*Record{},
		Groups:        map[string]*Record{},
		KeychainPrefs: map[int]KeychainPrefs{},
	}
	if st.Disk == "" {
		st.Disk = "disk3s1s1"
	}
	if st.MinPassword == 0 {
		st.MinPassword = 4
	}
	st.Policies = spec.PasswordPolicies
	if st.Policies == nil {
		st.Policies = []ContentPolicy{defaultContentPolicy(st.MinPassword)}
	}
	st.MaxFailedLogins = spec.MaxFailedLogins
	st.HardwareUUID = newUUID()
	st.Users["root"] = &Record{Attrs: map[string][]string{
		"RecordName":       {"root", "BUILTIN\\Local System"},
		"RealName":         {"System Administrator"},
		"UniqueID":         {"0"},
		"PrimaryGroupID":   {"0"},
		"NFSHomeDirectory": {"/var/root"},
		"UserShell":        {"/bin/sh"},
		"GeneratedUID":     {"FFFFEEEE-DDDD-CCCC-BBBB-AAAA00000000"},
		"Password":         {"*"},
	}}
	st.Groups["admin"] = &Record{Attrs: map[string][]string{
		"RecordName": {"admin", "BUILTIN\\Administrators"}, "PrimaryGroupID": {"80"},
		"RealName": {"Administrators"}, "GroupMembership": {"root"},
		"GeneratedUID": {"ABCDEFAB-CDEF-ABCD-EFAB-CDEF00000050"}, "Password": {"*"},
	}}
	st.Groups["staff"] = &Record{Attrs: map[string][]string{
		"RecordName": {"staff", "BUILTIN\\Users"}, "PrimaryGroupID": {"20"}, "RealName": {"Users"},
		"GeneratedUID": {"ABCDEFAB-CDEF-ABCD-EFAB-CDEF00000014"}, "Password": {"*"},
	}}

	for _, u := range spec.Users {
		if err := addSpecUser(st, u); err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
	}
	if spec.RecoveryKey {
		st.Crypto = append(st.Crypto, &CryptoUser{UUID: RecoveryUserUUID, Type: TypeRecoveryUser, VolumeOwner: true})
	}
	st.PrebootGen = st.CryptoGen
	for _, u := range spec.Users {
		if u.Name == spec.ConsoleUser {
			// Logged in at the screen: the GUI session exists and holds the
			// login keychain unlocked when the login password opens it.
			if err := st.login(u.Name, []byte(u.Password)); err != nil {
				return err
			}
		}
	}
	return saveState(dir, st)
}

func addSpecUser(st *State, u UserSpec) error {
	gid := u.GID
	if gid == 0 {
		gid = 20
	}
	home := u.Home
	if home == "" {
		home = filepath.Join(st.Root, "Users", u.Name)
	}
	shell := u.Shell
	if shell == "" {
		shell = "/bin/zsh"
	}
	guid := u.GeneratedUID
	if guid == "" {
		guid = newUUID()
	}
	guid = strings.ToUpper(guid)
	rec := &Record{Attrs: map[string][]string{
		"RecordName":       {u.Name},
		"UniqueID":         {strconv.Itoa(u.UID)},
		"PrimaryGroupID":   {strconv.Itoa(gid)},
		"NFSHomeDirectory": {home},
		"UserShell":        {shell},
		"GeneratedUID":     {guid},
		"Password":         {"********"},
		"AuthenticationAuthority": {
			";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2>",
			kerberosAuthority(u.Name),
		},
	}}
	if u.RealName != "" {
		rec.Attrs["RealName"] = []string{u.RealName}
	}
	if u.Hidden {
		rec.Attrs["IsHidden"] = []string{"1"}
	}
	h := newHash([]byte(u.Password))
	rec.setPassword(h)
	if u.SecureToken {
		rec.setToken(true)
	}
	if u.Disabled {
		rec.Attrs["AuthenticationAuthority"] = append(rec.Attrs["AuthenticationAuthority"], ";DisabledUser;")
	}
	if u.MobileFrom != "" {
		// A mobile account's record (macos-tools.md §2.6): LocalCachedUser
		// first, then the AD Kerberos principal, then the shadow hash.
		realm := strings.ToUpper(strings.TrimPrefix(u.MobileFrom[strings.LastIndex(u.MobileFrom, "/")+1:], "/"))
		rec.Attrs["AuthenticationAuthority"] = []string{
			";LocalCachedUser;" + u.MobileFrom + ":" + u.Name + ":" + guid,
			";Kerberosv5;;" + u.Name + "@" + realm + ";" + realm + ";",
			";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>",
		}
		rec.Attrs["OriginalNodeName"] = []string{u.MobileFrom}
	}
	if u.HomeDirectory != "" {
		rec.Attrs["HomeDirectory"] = []string{u.HomeDirectory}
	}
	rec.MustChange = u.MustChangeLocal
	rec.Policies = u.PasswordPolicies
	st.Users[u.Name] = rec
	if u.Admin {
		st.setAdmin(u.Name, true)
	}
	crypto := u.SecureToken
	if u.FileVault != nil {
		crypto = *u.FileVault
	}
	if crypto {
		fvpw := u.FileVaultPassword
		if fvpw == "" {
			fvpw = u.Password
		}
		ph := newHash([]byte(fvpw))
		st.Crypto = append(st.Crypto, &CryptoUser{UUID: guid, Type: TypeODUser, VolumeOwner: u.Admin || u.SecureToken, Passphrase: &ph})
		st.CryptoGen++
	}
	return makeHome(home, u, st.HardwareUUID)
}

func kerberosAuthority(name string) string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return fmt.Sprintf(";Kerberosv5;;%s@LKDC:SHA1.%X;LKDC:SHA1.%X;", name, b, b)
}

// makeHome creates the simulated home with real ownership: home 0755,
// ~/Library and ~/Library/Keychains 0700, the keychain file 0600, all owned
// by the account (ownership is skipped when not running as root).
func makeHome(home string, u UserSpec, hwUUID string) error {
	gid := u.GID
	if gid == 0 {
		gid = 20
	}
	kcDir := filepath.Join(home, "Library", "Keychains")
	for _, d := range []struct {
		p    string
		mode os.FileMode
	}{{home, 0o755}, {filepath.Join(home, "Library"), 0o700}, {kcDir, 0o700}} {
		if err := os.MkdirAll(d.p, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(d.p, d.mode); err != nil {
			return err
		}
		if err := chownIfRoot(d.p, u.UID, gid); err != nil {
			return err
		}
	}
	if u.LocalItems {
		li := filepath.Join(kcDir, hwUUID)
		if err := os.Mkdir(li, 0o700); err != nil {
			return err
		}
		if err := chownIfRoot(li, u.UID, gid); err != nil {
			return err
		}
		uid := -1
		if os.Geteuid() == 0 {
			uid = u.UID
		}
		if err := writeFileAtomic(filepath.Join(li, "keychain-2.db"), []byte("macsim local items of "+u.Name+"\n"), 0o600, uid, gid); err != nil {
			return err
		}
	}
	ks := u.Keychain
	if ks == nil {
		ks = &KeychainSpec{}
	}
	if ks.Absent {
		return nil
	}
	pw := ks.Password
	if pw == "" {
		pw = u.Password
	}
	items := ks.Items
	if items == nil {
		items = []KeychainItem{
			{Service: "Wi-Fi", Account: "Office", Secret: "wifi-secret-" + u.Name},
			{Service: "mail.example.com", Account: u.Name, Secret: "mail-secret-" + u.Name},
		}
	}
	data, err := newKeychainFile([]byte(pw), items)
	if err != nil {
		return err
	}
	uid := -1
	if os.Geteuid() == 0 {
		uid = u.UID
	}
	return writeFileAtomic(filepath.Join(kcDir, "login.keychain-db"), data, 0o600, uid, gid)
}

func chownIfRoot(path string, uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, uid, gid)
}

// ReadSpec decodes a JSON spec file.
func ReadSpec(path string) (Spec, error) {
	var sp Spec
	b, err := os.ReadFile(path)
	if err != nil {
		return sp, err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sp); err != nil {
		return sp, fmt.Errorf("spec %s: %w", path, err)
	}
	return sp, nil
}
