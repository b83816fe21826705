package macsim

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Security (audit) sessions, as macos-tools.md §5.8 describes them:
//
//   - a keychain's unlocked state belongs to a session, not to a process;
//     securityd looks the keychain up in the caller's session;
//   - a child inherits its parent's session, and setsid(2) does not change
//     it, so every tool a daemon runs shares the daemon's session;
//   - unlock-keychain on a keychain already unlocked in the caller's session
//     succeeds whatever password it is given ("Does absolutely nothing if the
//     database is already unlocked");
//   - lock-keychain locks it in the caller's session only;
//   - the console user's login keychain is unlocked in their GUI session from
//     login on (loginwindow unlocks it with the login password).
//
// The simulator finds a process's session by its ancestry, the closest thing
// Linux has to an inherited audit session id: a session lists the processes
// that entered it (launchctl asuser, login), and a process belongs to the
// session of its nearest ancestor (itself included) listed in one. A process
// with no such ancestor is in the system session, where LaunchDaemons (and so
// lockstepd and every tool it runs) live. Processes are named by pid and start
// time, so a reused pid is never mistaken for a member. The model's limit: a
// process whose parent exited before it ran (reparented to init, as a
// double-forking daemon is) is taken to be in the system session, where a Mac
// would keep its audit session; Lockstep never starts tools that way.

// SystemSession is the session of launchd's daemons.
const SystemSession = "system"

// GUISession is the id of uid's login (Aqua) session.
func GUISession(uid int) string { return "gui/" + strconv.Itoa(uid) }

// Session is one security session of the simulated Mac.
type Session struct {
	ID  string `json:"id"`
	UID int    `json:"uid"`
	// Members are the processes put in this session; their descendants are
	// in it too.
	Members []Proc `json:"members,omitempty"`
	// Unlocked are the keychains unlocked in this session.
	Unlocked []UnlockedKeychain `json:"unlocked,omitempty"`
}

// Proc names a process: its pid and its start time (clock ticks since boot),
// so that a pid reused by another process does not match.
type Proc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// UnlockedKeychain is a keychain unlocked in a session: the path the caller
// named and the identity of the keychain's master key. A file replaced at
// that path (moved aside, a new one created) is another keychain and starts
// locked; a re-keyed file keeps its master key and stays unlocked.
type UnlockedKeychain struct {
	Path string `json:"path"`
	Key  string `json:"key"`
}

func (s *Session) isUnlocked(path, key string) bool {
	return slices.ContainsFunc(s.Unlocked, func(u UnlockedKeychain) bool { return u.Path == path && u.Key == key })
}

func (s *Session) unlock(path, key string) {
	s.lock(path)
	s.Unlocked = append(s.Unlocked, UnlockedKeychain{Path: path, Key: key})
}

func (s *Session) lock(path string) {
	s.Unlocked = slices.DeleteFunc(s.Unlocked, func(u UnlockedKeychain) bool { return u.Path == path })
}

// session returns the session with id, creating it when create is set.
func (st *State) session(id string, uid int, create bool) *Session {
	for _, s := range st.Sessions {
		if s.ID == id {
			return s
		}
	}
	if !create {
		return nil
	}
	s := &Session{ID: id, UID: uid}
	st.Sessions = append(st.Sessions, s)
	return s
}

// sessionOf returns the session of the process pid: that of its nearest
// listed ancestor, else the system session.
func (st *State) sessionOf(pid int) *Session {
	for _, p := range ancestry(pid) {
		for _, s := range st.Sessions {
			if slices.Contains(s.Members, p) {
				return s
			}
		}
	}
	return st.session(SystemSession, 0, true)
}

// pruneSessions forgets members that have exited, and background sessions
// nobody is in any more. A GUI session lasts until logout.
func (st *State) pruneSessions() {
	st.Sessions = slices.DeleteFunc(st.Sessions, func(s *Session) bool {
		s.Members = slices.DeleteFunc(s.Members, func(p Proc) bool { return !alive(p) })
		return s.ID != SystemSession && !isGUISession(s.ID) && len(s.Members) == 0
	})
}

func isGUISession(id string) bool { return len(id) > 4 && id[:4] == "gui/" }

// login starts name's GUI session: the console user becomes name and the
// login keychain is unlocked in that session when password opens it (as
// loginwindow does; otherwise it stays locked and macOS would ask to update
// the keychain password).
func (st *State) login(name string, password []byte) error {
	rec := st.user(name)
	if rec == nil {
		return fmt.Errorf("no user %s", name)
	}
	if !rec.Shadow.Matches(password) {
		return fmt.Errorf("wrong password for %s", name)
	}
	st.logout()
	st.ConsoleUser = name
	s := st.session(GUISession(rec.uid()), rec.uid(), true)
	path := filepath.Join(rec.first("NFSHomeDirectory"), "Library", "Keychains", "login.keychain-db")
	if data, err := os.ReadFile(path); err == nil {
		if kf, err := parseKeychainFile(data); err == nil {
			if _, err := kf.unlock(password); err == nil {
				s.unlock(path, kf.ID)
			}
		}
	}
	return nil
}

// logout ends the console user's GUI session.
func (st *State) logout() {
	if rec := st.user(st.ConsoleUser); rec != nil {
		id := GUISession(rec.uid())
		st.Sessions = slices.DeleteFunc(st.Sessions, func(s *Session) bool { return s.ID == id })
	}
	st.ConsoleUser = ""
}

// self names the calling process.
func self() Proc {
	_, start, _ := procStat(os.Getpid())
	return Proc{PID: os.Getpid(), Start: start}
}

// ancestry lists pid and its ancestors, nearest first, up to (not including)
// pid 1.
func ancestry(pid int) []Proc {
	var out []Proc
	for i := 0; pid > 1 && i < 256; i++ {
		ppid, start, ok := procStat(pid)
		if !ok {
			break
		}
		out = append(out, Proc{PID: pid, Start: start})
		pid = ppid
	}
	return out
}

// alive reports whether p is still running (the same process, not a reuse of
// its pid).
func alive(p Proc) bool {
	_, start, ok := procStat(p.PID)
	return ok && start == p.Start
}
