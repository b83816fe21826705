package macsim

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// sudo implements `sudo -u USER PROGRAM [ARGS...]` as a root daemon uses it
// inside `launchctl asuser` (facts-issue15-keychain.md K3, K4): launchctl
// asuser puts the program in the user's security session but "does not
// modify the process' credentials (UID, GID, etc.)", so the user is taken on
// with sudo -u. sudo asks root for no password ("If the invoking user is
// root or if the target user is the same as the invoking user, no password
// is required", sudo(8)) and exits with the program's status.
//
// The simulator switches to the user's uid and primary gid (no
// supplementary groups) and execs PROGRAM, which keeps the pid, so the
// session launchctl entered stays the program's. When the simulated
// superuser is not really root (an unprivileged test run) no uid can be
// switched: the process is recorded as acting as the user instead
// (State.Acting), and every tool it becomes takes that uid as its own, so
// the program sees the user it would on a Mac.
//
// Only -u is modelled. Assumed texts: the refusal of a caller that is not
// root ("sudo: a password is required"), an unknown user, a relative
// program path, and the usage line.
func (in *inv) sudo() int {
	args := in.args
	user := ""
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch {
		case args[0] == "--":
			args = args[1:]
			goto done
		case args[0] == "-u" && len(args) > 1:
			user, args = args[1], args[2:]
		default:
			fmt.Fprintln(in.stderr, "usage: sudo -u user command [arg ...]")
			return 1
		}
	}
done:
	if user == "" || len(args) == 0 {
		fmt.Fprintln(in.stderr, "usage: sudo -u user command [arg ...]")
		return 1
	}
	if !in.isRoot() && in.st.userByUID(in.euid) != in.sudoTarget(user) {
		fmt.Fprintln(in.stderr, "sudo: a password is required")
		return 1
	}
	rec := in.sudoTarget(user)
	if rec == nil {
		fmt.Fprintf(in.stderr, "sudo: unknown user %s\n", user)
		return 1
	}
	prog := args[0]
	if !filepath.IsAbs(prog) {
		fmt.Fprintf(in.stderr, "sudo: %s: command not found\n", prog)
		return 1
	}
	uid, gid := rec.uid(), rec.gid()
	env := sudoEnv(rec)
	switching := os.Geteuid() == 0
	if !switching {
		in.st.Acting = slices.DeleteFunc(in.st.Acting, func(a ActingAs) bool { return a.Proc == self() })
		in.st.Acting = append(in.st.Acting, ActingAs{Proc: self(), UID: uid})
		in.dirty = true
	}
	in.finish()
	in.finished = true
	in.unlockState()
	if switching {
		if err := syscall.Setgroups([]int{}); err == nil {
			if err = syscall.Setgid(gid); err == nil {
				err = syscall.Setuid(uid)
			}
			if err != nil {
				fmt.Fprintf(in.stderr, "sudo: unable to change to user %s: %v\n", user, err)
				return 1
			}
		}
	}
	err := syscall.Exec(prog, args, env)
	fmt.Fprintf(in.stderr, "sudo: %s: %v\n", prog, err)
	return 1
}

// sudoTarget is the account sudo -u names: a short name, or #uid.
func (in *inv) sudoTarget(user string) *Record {
	if n, ok := strings.CutPrefix(user, "#"); ok {
		id, err := strconv.Atoi(n)
		if err != nil {
			return nil
		}
		return in.st.userByUID(id)
	}
	return in.st.user(user)
}

// sudoEnv is the environment sudo gives the program: reset to the target
// user's (sudoers env_reset), with the SUDO_* variables sudo(8) documents.
// Assumed: which variables macOS's sudoers keeps does not matter to any
// simulated tool, which never reads its environment.
func sudoEnv(rec *Record) []string {
	name := rec.first("RecordName")
	return []string{
		"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + rec.first("NFSHomeDirectory"),
		"USER=" + name, "LOGNAME=" + name, "SUDO_USER=root", "SUDO_UID=0", "SUDO_GID=0",
	}
}

// ActingAs is a process a simulated sudo could not really switch (the
// simulated superuser was not root): it and the programs it execs act as
// UID.
type ActingAs struct {
	Proc Proc `json:"proc"`
	UID  int  `json:"uid"`
}

// actingUID is the uid a process acts as because a simulated sudo became
// it (or an ancestor), if any.
func (st *State) actingUID(pid int) (int, bool) {
	for _, p := range ancestry(pid) {
		for _, a := range st.Acting {
			if a.Proc == p {
				return a.UID, true
			}
		}
	}
	return 0, false
}

// pruneActing forgets processes that have exited.
func (st *State) pruneActing() {
	st.Acting = slices.DeleteFunc(st.Acting, func(a ActingAs) bool { return !alive(a.Proc) })
}
