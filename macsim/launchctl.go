package macsim

import (
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
)

// launchctl implements `launchctl asuser UID PROGRAM [ARGS...]` (§8.2): run
// PROGRAM in the security session of user UID, which is how a root daemon
// reaches a logged-in user's GUI session (the user's keychain search list
// and unlocked login keychain live there, §5.4, §5.8). The program keeps the
// caller's uid: root must still switch users itself (the reference's
// examples add `sudo -u USER`).
//
// The session is the user's GUI session when they are logged in at the
// console, otherwise a background session of their own (assumed: the
// reference does not say what asuser does for a user without a GUI session).
// The simulator puts its own process in the session and then execs PROGRAM,
// which keeps the pid, so PROGRAM and its children are in that session.
//
// Assumed texts: the refusal for a non-root caller and the usage line.
func (in *inv) launchctl() int {
	if len(in.args) == 0 || in.args[0] != "asuser" {
		fmt.Fprintln(in.stderr, "Usage: launchctl asuser <UID> <program> [arguments ...]")
		return 64
	}
	if !in.isRoot() {
		fmt.Fprintln(in.stderr, "This operation requires root privileges: asuser")
		return 1
	}
	if len(in.args) < 3 {
		fmt.Fprintln(in.stderr, "Usage: launchctl asuser <UID> <program> [arguments ...]")
		return 64
	}
	uid, err := strconv.Atoi(in.args[1])
	if err != nil || uid < 0 {
		fmt.Fprintf(in.stderr, "Could not parse UID: %s\n", in.args[1])
		return 64
	}
	prog := in.args[2]
	if !filepath.IsAbs(prog) {
		fmt.Fprintf(in.stderr, "launchctl asuser: %s: not an absolute path\n", prog)
		return 64
	}
	id := "user/" + strconv.Itoa(uid)
	if rec := in.st.user(in.st.ConsoleUser); rec != nil && rec.uid() == uid {
		id = GUISession(uid)
	}
	s := in.st.session(id, uid, true)
	s.Members = append(s.Members, self())
	in.dirty = true
	in.rec.Session = id
	in.finish()
	in.finished = true
	in.unlockState()
	argv := append([]string{prog}, in.args[3:]...)
	err = syscall.Exec(prog, argv, syscall.Environ())
	fmt.Fprintf(in.stderr, "launchctl asuser: exec %s: %v\n", prog, err)
	return 1
}
