package macsim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// Sim is a simulated Mac on disk, for tests and the macsim command line to
// set up, inspect and fault. Every method takes the state lock.
type Sim struct {
	Dir string
}

// Open returns the simulated Mac at dir.
func Open(dir string) (*Sim, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(stateDir(dir), stateFileName)); err != nil {
		return nil, fmt.Errorf("no simulated Mac at %s: %w", dir, err)
	}
	return &Sim{Dir: dir}, nil
}

// ToolsDir is the directory to give the platform layer as its ToolsDir.
func (s *Sim) ToolsDir() string { return filepath.Join(s.Dir, toolsDirName) }

// RecordPath is the append-only invocation record.
func (s *Sim) RecordPath() string { return filepath.Join(stateDir(s.Dir), recordFileName) }

// InstallTools puts the simulator binary exe into dir/tools (a hard link, or
// a copy across file systems) with one symlink per tool. The binary must live
// there: the tools find their state from their own path.
func InstallTools(dir, exe string) error {
	tools := filepath.Join(dir, toolsDirName)
	if err := os.MkdirAll(tools, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(tools, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(tools, "macsim")
	if exe, err := filepath.EvalSymlinks(exe); err == nil {
		if same, _ := sameFile(exe, bin); !same {
			_ = os.Remove(bin)
			if err := os.Link(exe, bin); err != nil {
				if err := copyFile(exe, bin); err != nil {
					return fmt.Errorf("install %s: %w", bin, err)
				}
			}
		}
	} else {
		return err
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		return err
	}
	for _, t := range Tools {
		p := filepath.Join(tools, t)
		_ = os.Remove(p)
		if err := os.Symlink("macsim", p); err != nil {
			return err
		}
	}
	return nil
}

func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// view runs fn on the state under the lock, saving it when fn returns
// save=true.
func (s *Sim) view(fn func(*State) (save bool, err error)) error {
	unlock, err := lockState(s.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(s.Dir)
	if err != nil {
		return err
	}
	save, err := fn(st)
	if err != nil {
		return err
	}
	if save {
		return saveState(s.Dir, st)
	}
	return nil
}

// Snapshot is the non-secret truth of a simulated Mac (`macsim state`).
type Snapshot struct {
	FileVault      bool           `json:"filevault"`
	Disk           string         `json:"disk"`
	ConsoleUser    string         `json:"console_user"`
	PrebootCurrent bool           `json:"preboot_current"`
	Users          []UserSnapshot `json:"users"`
	CryptoUsers    []CryptoUser   `json:"crypto_users"`
	Faults         []Fault        `json:"faults"`
}

// UserSnapshot is one account as the truth knows it.
type UserSnapshot struct {
	Name         string             `json:"name"`
	RealName     string             `json:"real_name"`
	UID          int                `json:"uid"`
	GID          int                `json:"gid"`
	GeneratedUID string             `json:"generated_uid"`
	Home         string             `json:"home"`
	SecureToken  bool               `json:"secure_token"`
	Admin        bool               `json:"admin"`
	Hidden       bool               `json:"hidden"`
	Disabled     bool               `json:"disabled"`
	CryptoUser   bool               `json:"crypto_user"`
	Keychains    []KeychainSnapshot `json:"keychains"`
	// DefaultKeychain is the user's default keychain preference (set with
	// security default-keychain -s); empty: the login keychain.
	DefaultKeychain string `json:"default_keychain,omitempty"`
	// SearchList is the user's keychain search list (list-keychains -d user)
	// as the user's own session sees it.
	SearchList []string `json:"search_list,omitempty"`
}

// KeychainSnapshot is one file in ~/Library/Keychains.
type KeychainSnapshot struct {
	Name  string   `json:"name"`
	Path  string   `json:"path"`
	UID   int      `json:"uid"`
	Mode  string   `json:"mode"`
	Items []string `json:"items"` // "service/account", readable without the password
}

// Snapshot reads the current truth.
func (s *Sim) Snapshot() (*Snapshot, error) {
	var snap Snapshot
	err := s.view(func(st *State) (bool, error) {
		snap = Snapshot{FileVault: st.FileVault, Disk: st.Disk, ConsoleUser: st.ConsoleUser, PrebootCurrent: st.PrebootGen == st.CryptoGen}
		for _, n := range st.userNames() {
			if n == "root" {
				continue
			}
			r := st.Users[n]
			u := UserSnapshot{
				Name: n, RealName: r.first("RealName"), UID: r.uid(), GID: r.gid(), GeneratedUID: r.first("GeneratedUID"),
				Home: r.first("NFSHomeDirectory"), SecureToken: r.hasToken(), Admin: st.isAdmin(n),
				Hidden: r.first("IsHidden") == "1", Disabled: r.disabled(), CryptoUser: st.crypto(r.first("GeneratedUID")) != nil,
			}
			u.Keychains = keychainFiles(u.Home)
			p := st.KeychainPrefs[u.UID]
			u.DefaultKeychain = p.Default
			switch {
			case p.SearchListSet:
				u.SearchList = slices.Clone(p.SearchList)
			default:
				u.SearchList = []string{filepath.Join(u.Home, "Library", "Keychains", "login.keychain-db")}
			}
			snap.Users = append(snap.Users, u)
		}
		for _, c := range st.Crypto {
			cu := *c
			cu.Passphrase = nil
			snap.CryptoUsers = append(snap.CryptoUsers, cu)
		}
		for _, f := range st.Faults {
			snap.Faults = append(snap.Faults, *f)
		}
		return false, nil
	})
	return &snap, err
}

func keychainFiles(home string) []KeychainSnapshot {
	dir := filepath.Join(home, "Library", "Keychains")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []KeychainSnapshot
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		ks := KeychainSnapshot{Name: e.Name(), Path: p}
		if fi, err := os.Lstat(p); err == nil {
			ks.UID, _ = fileOwner(fi)
			ks.Mode = fi.Mode().Perm().String()
		}
		if data, err := os.ReadFile(p); err == nil {
			if kf, err := parseKeychainFile(data); err == nil {
				for _, it := range kf.Items {
					ks.Items = append(ks.Items, it.Service+"/"+it.Account)
				}
			}
		}
		out = append(out, ks)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func fileOwner(fi os.FileInfo) (int, int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}

// ErrNoUser is returned for a user the simulated Mac does not have.
var ErrNoUser = errors.New("macsim: no such user")

// CheckPassword reports whether pw is the account password of user.
func (s *Sim) CheckPassword(user string, pw []byte) (bool, error) {
	var ok bool
	err := s.view(func(st *State) (bool, error) {
		r := st.user(user)
		if r == nil {
			return false, ErrNoUser
		}
		ok = r.Shadow.Matches(pw)
		return false, nil
	})
	return ok, err
}

// CheckFileVault reports whether pw unlocks user's APFS crypto user (what
// the FileVault unlock screen would accept). It fails for a user that is
// not a crypto user.
func (s *Sim) CheckFileVault(user string, pw []byte) (bool, error) {
	var ok bool
	err := s.view(func(st *State) (bool, error) {
		r := st.user(user)
		if r == nil {
			return false, ErrNoUser
		}
		c := st.crypto(r.first("GeneratedUID"))
		if c == nil {
			return false, fmt.Errorf("macsim: %s is not a crypto user", user)
		}
		ok = c.Passphrase.Matches(pw)
		return false, nil
	})
	return ok, err
}

// LoginKeychainPath is where user's login keychain lives in the simulation.
func (s *Sim) LoginKeychainPath(user string) (string, error) {
	var p string
	err := s.view(func(st *State) (bool, error) {
		r := st.user(user)
		if r == nil {
			return false, ErrNoUser
		}
		p = filepath.Join(r.first("NFSHomeDirectory"), "Library", "Keychains", "login.keychain-db")
		return false, nil
	})
	return p, err
}

// OpenKeychain decrypts the keychain file at path with pw.
func (s *Sim) OpenKeychain(path string, pw []byte) ([]KeychainItem, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ReadKeychain(data, pw)
}

// AddFault appends a fault.
func (s *Sim) AddFault(f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	f.Fired = 0
	return s.view(func(st *State) (bool, error) { st.Faults = append(st.Faults, &f); return true, nil })
}

// ClearFaults removes every fault.
func (s *Sim) ClearFaults() error {
	return s.view(func(st *State) (bool, error) { st.Faults, st.DeferredCrash = nil, nil; return true, nil })
}

// SetConsoleUser puts name at the screen ("loginwindow" or "" for none)
// without a password: a GUI session exists for a user, but no keychain is
// unlocked in it (Login unlocks the login keychain as loginwindow does).
func (s *Sim) SetConsoleUser(name string) error {
	return s.view(func(st *State) (bool, error) {
		if name != "" && name != "loginwindow" && st.user(name) == nil {
			return false, ErrNoUser
		}
		st.logout()
		st.ConsoleUser = name
		if rec := st.user(name); rec != nil {
			st.session(GUISession(rec.uid()), rec.uid(), true)
		}
		return true, nil
	})
}

// Login logs name in at the screen with password: the console user becomes
// name and their login keychain is unlocked in their GUI session when the
// password opens it.
func (s *Sim) Login(name string, password []byte) error {
	return s.view(func(st *State) (bool, error) { return true, st.login(name, password) })
}

// Logout ends the console user's session (the login window shows).
func (s *Sim) Logout() error {
	return s.view(func(st *State) (bool, error) { st.logout(); st.ConsoleUser = "loginwindow"; return true, nil })
}

// Sessions returns the security sessions and the keychains unlocked in each.
func (s *Sim) Sessions() ([]Session, error) {
	var out []Session
	err := s.view(func(st *State) (bool, error) {
		st.pruneSessions()
		for _, se := range st.Sessions {
			out = append(out, *se)
		}
		return true, nil
	})
	return out, err
}

// UnlockedIn reports whether the keychain at path is unlocked in the
// session id (SystemSession, GUISession(uid), ...).
func (s *Sim) UnlockedIn(id, path string) (bool, error) {
	sessions, err := s.Sessions()
	if err != nil {
		return false, err
	}
	for _, se := range sessions {
		if se.ID == id {
			return slices.ContainsFunc(se.Unlocked, func(u UnlockedKeychain) bool { return u.Path == path }), nil
		}
	}
	return false, nil
}

// SetFileVault turns FileVault on or off.
func (s *Sim) SetFileVault(on bool) error {
	return s.view(func(st *State) (bool, error) { st.FileVault = on; return true, nil })
}

// Invocations reads the invocation record.
func (s *Sim) Invocations() ([]Invocation, error) {
	f, err := os.Open(s.RecordPath())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Invocation
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var r Invocation
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("invocation record: %w", err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// RunTool runs one of the simulated tools as the calling process (so in the
// caller's security session) with stdin, as a person at a terminal or a
// script would; a non-zero exit is an error holding its output.
func (s *Sim) RunTool(tool string, args []string, stdin []byte) error {
	if !slices.Contains(Tools, tool) {
		return fmt.Errorf("%s is not a simulated tool", tool)
	}
	cmd := exec.Command(filepath.Join(s.ToolsDir(), tool), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no terminal: prompts read stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, out)
	}
	return nil
}
