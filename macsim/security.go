package macsim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// osStatus is a Security framework status with its message
// (SecCopyErrorMessageString). security(1) exits with the status truncated to
// 8 bits.
type osStatus struct {
	code int
	msg  string
}

var (
	errSecAuthFailed        = osStatus{-25293, "The user name or passphrase you entered is not correct."}
	errSecNoSuchKeychain    = osStatus{-25294, "The specified keychain could not be found."}
	errSecInvalidKeychain   = osStatus{-25295, "The specified keychain is not a valid keychain file."}
	errSecDuplicateKeychain = osStatus{-25296, "A keychain with the same name already exists."}
	errSecNoDefaultKeychain = osStatus{-25307, "A default keychain could not be found."}
	// UNIX errors are errno + 100000 (errSecErrnoBase); message format
	// "UNIX[<strerror>]". Assumed for unreadable keychain files.
	errUnixPermission = osStatus{100013, "UNIX[Permission denied]"}
	errUnixNoEntry    = osStatus{100002, "UNIX[No such file or directory]"}
)

func (s osStatus) exit() int { return int(uint8(int32(s.code))) }

var securityCommands = []string{
	"list-keychains", "default-keychain", "login-keychain", "create-keychain",
	"lock-keychain", "unlock-keychain", "set-keychain-password", "show-keychain-info",
}

// matchSecurityCommand resolves a command or an unambiguous abbreviation of
// one, as security(1) matches commands by prefix.
func matchSecurityCommand(c string) string {
	if c == "" {
		return ""
	}
	for _, name := range securityCommands {
		if strings.HasPrefix(name, c) {
			return name
		}
	}
	return ""
}

// getopt parses single-letter options; those in withArg take a value.
func getopt(args []string, withArg, plain string) (map[byte]string, []string, bool) {
	opts := map[byte]string{}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) != 2 || a[0] != '-' {
			break
		}
		switch {
		case strings.IndexByte(withArg, a[1]) >= 0:
			if i+1 >= len(args) {
				return nil, nil, false
			}
			opts[a[1]] = args[i+1]
			i++
		case strings.IndexByte(plain, a[1]) >= 0:
			opts[a[1]] = ""
		default:
			return nil, nil, false
		}
	}
	return opts, args[i:], true
}

// security runs security(1): one command from argv, or with -i every command
// read from stdin (§5.6). Commands return the raw OSStatus (or 1, or 2 for a
// usage error, as SecurityTool's do); the process exits with it & 0xff.
func (in *inv) security() int {
	args := in.args
	interactive, quiet := false, false
	for len(args) > 0 && len(args[0]) == 2 && args[0][0] == '-' {
		switch args[0] {
		case "-i":
			interactive = true
		case "-q":
			quiet = true
		default:
			fmt.Fprintln(in.stderr, "usage: security [-h] [-i] [-l] [-p prompt] [-q] [-v] [command] [opt ...]")
			return 2
		}
		args = args[1:]
	}
	if len(args) == 0 && interactive {
		return statusExit(in.securityInteractive(quiet))
	}
	if len(args) == 0 {
		fmt.Fprintln(in.stderr, "usage: security [-h] [-i] [-l] [-p prompt] [-q] [-v] [command] [opt ...]")
		return 2
	}
	return statusExit(in.securityCommand(args))
}

func statusExit(status int) int { return int(uint8(int32(status))) }

// securityCommand runs one command and returns its status.
func (in *inv) securityCommand(args []string) int {
	cmd := matchSecurityCommand(args[0])
	rest := args[1:]
	switch cmd {
	case "unlock-keychain":
		return in.secUnlock(rest)
	case "lock-keychain":
		return in.secLock(rest)
	case "set-keychain-password":
		return in.secSetPassword(rest)
	case "create-keychain":
		return in.secCreate(rest)
	case "show-keychain-info":
		return in.secShowInfo(rest)
	case "login-keychain", "default-keychain":
		return in.secPref(cmd, rest)
	case "list-keychains":
		return in.secList(rest)
	}
	fmt.Fprintf(in.stderr, "security: unknown command \"%s\"\n", args[0])
	return 1
}

// maxLineLen and maxArgs are security -i's limits (security.c).
const (
	maxLineLen = 4096
	maxArgs    = 32
)

// securityInteractive reads commands from stdin, one per line, and runs each
// in turn: after a failing command it prints "<cmd>: returned <status>" to
// stderr (unless -q); the result is the last command's status. No prompt is
// written, as stdin is not a terminal for a daemon's child. Faults match
// each command by its name, as they would a single run.
func (in *inv) securityInteractive(quiet bool) int {
	r := bufio.NewReaderSize(os.Stdin, maxLineLen)
	result := 0
	for {
		line, err := r.ReadSlice('\n')
		in.rec.StdinBytes += len(line)
		if errors.Is(err, bufio.ErrBufferFull) {
			fmt.Fprintln(in.stderr, "security: line too long")
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				in.rec.StdinBytes += len(line)
			}
			result = 1
			continue
		}
		argv, ok := splitLine(strings.TrimRight(string(line), "\r\n"))
		switch {
		case !ok:
			fmt.Fprintln(in.stderr, "security: unmatched quote or too many arguments")
			result = 1
		case len(argv) == 0:
		case argv[0] == "exit" || argv[0] == "quit":
			return result
		default:
			cmd := matchSecurityCommand(argv[0])
			if cmd == "" {
				cmd = argv[0]
			}
			in.rec.Commands = append(in.rec.Commands, cmd)
			result = in.securityFaulted(cmd, argv)
			if result != 0 && !quiet {
				fmt.Fprintf(in.stderr, "%s: returned %d\n", argv[0], result)
			}
		}
		if err != nil {
			return result
		}
	}
}

// securityFaulted runs one command of an interactive run under the fault
// that matches it, if any.
func (in *inv) securityFaulted(cmd string, argv []string) int {
	f := in.st.matchFault("security", cmd, argv[1:])
	if f == nil {
		return in.securityCommand(argv)
	}
	in.dirty = true
	switch {
	case f.Hang:
		in.hang()
	case !f.CrashCaller:
		return in.fail(f)
	}
	// The caller dies once this run has recorded itself (runTool delivers
	// the kill after finish), so a test that sees the caller gone also sees
	// the step that killed it. The rest of what the caller wrote to stdin
	// still runs, as it would in a real security -i whose parent died.
	status := in.securityCommand(argv)
	in.crashCaller()
	return status
}

// splitLine splits a line the way security -i does (split_line in
// security.c): words separated by blanks; '"' or '\” quote up to the same
// character; a backslash escapes the next character inside and outside
// quotes.
func splitLine(line string) ([]string, bool) {
	var (
		out   []string
		word  []byte
		in    bool // inside a word
		quote byte
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line):
			i++
			word, in = append(word, line[i]), true
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			word = append(word, c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				out, word, in = append(out, string(word)), nil, false
			}
		default:
			word, in = append(word, c), true
		}
	}
	if quote != 0 {
		return nil, false
	}
	if in {
		out = append(out, string(word))
	}
	return out, len(out) <= maxArgs
}

func (in *inv) secUsage(cmd, usage string) int {
	fmt.Fprintf(in.stderr, "Usage: %s %s\n", cmd, usage)
	return 2
}

// defaultKeychain is the caller's login (or default) keychain:
// ~/Library/Keychains/login.keychain-db of the account whose uid is the
// caller's effective uid, or for the default keychain its preference when
// set. The login keychain has no preference to set: login-keychain -s is
// compiled out (secPref).
func (in *inv) defaultKeychain(login bool) (string, osStatus) {
	p := in.st.KeychainPrefs[in.euid]
	if !login && p.Default != "" {
		return p.Default, osStatus{}
	}
	rec := in.st.userByUID(in.euid)
	if rec == nil || in.isRoot() {
		return "", errSecNoDefaultKeychain
	}
	return filepath.Join(rec.first("NFSHomeDirectory"), "Library", "Keychains", "login.keychain-db"), osStatus{}
}

// readKeychain reads a keychain file with the caller's own permissions.
func readKeychainFile(path string) (*keychainFile, osStatus) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errSecNoSuchKeychain
	case errors.Is(err, fs.ErrPermission):
		return nil, errUnixPermission
	case err != nil:
		return nil, errSecInvalidKeychain
	}
	kf, err := parseKeychainFile(data)
	if err != nil {
		return nil, errSecInvalidKeychain
	}
	return kf, osStatus{}
}

// callerSession is the security session of this invocation.
func (in *inv) callerSession() *Session { return in.st.sessionOf(os.Getpid()) }

// keychainKey names a keychain for a session's unlocked list: its path as
// the caller named it (made absolute), as securityd's database name is.
func keychainKey(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// secUnlock is SecKeychainUnlock through securityd's makeUnlocked: a keychain
// already unlocked in the caller's session stays unlocked and the call
// succeeds whatever the password (§5.8); a locked one is decoded with the
// password and becomes unlocked in the caller's session, or the call fails
// with errSecAuthFailed.
func (in *inv) secUnlock(args []string) int {
	opts, rest, ok := getopt(args, "p", "u")
	if !ok || len(rest) > 1 {
		return in.secUsage("unlock-keychain", "[-u] [-p password] [keychain]")
	}
	name, path := "default", ""
	if len(rest) == 1 {
		name, path = rest[0], rest[0]
	} else {
		var st osStatus
		if path, st = in.defaultKeychain(false); st.code != 0 {
			fmt.Fprintf(in.stderr, "security: SecKeychainCopyDefault: %s\n", st.msg)
			return st.code
		}
	}
	var pw []byte
	if v, ok := opts['p']; ok {
		pw = []byte(v)
	} else {
		pw = in.getpass("password to unlock " + name + ": ")
	}
	kf, st := readKeychainFile(path)
	if st.code == 0 {
		sess, key := in.callerSession(), keychainKey(path)
		switch {
		case sess.isUnlocked(key, kf.ID):
		case in.st.Quirks.UnlockAcceptsAny:
		default:
			if _, err := kf.unlock(pw); err != nil {
				st = errSecAuthFailed
			} else {
				sess.unlock(key, kf.ID)
				in.dirty = true
			}
		}
	}
	if st.code != 0 {
		fmt.Fprintf(in.stderr, "security: SecKeychainUnlock %s: %s\n", name, st.msg)
		return st.code
	}
	return 0
}

// secLock locks a keychain (or, with -a, every keychain) in the caller's
// session only; other sessions keep theirs unlocked (§5.8). Assumed: a
// missing keychain file fails with errSecNoSuchKeychain and this message.
func (in *inv) secLock(args []string) int {
	opts, rest, ok := getopt(args, "", "a")
	if !ok || len(rest) > 1 {
		return in.secUsage("lock-keychain", "[-a | keychain]")
	}
	sess := in.callerSession()
	if _, all := opts['a']; all {
		if len(rest) != 0 {
			return in.secUsage("lock-keychain", "[-a | keychain]")
		}
		if len(sess.Unlocked) > 0 {
			sess.Unlocked, in.dirty = nil, true
		}
		return 0
	}
	name, path := "default", ""
	if len(rest) == 1 {
		name, path = rest[0], rest[0]
	} else {
		var st osStatus
		if path, st = in.defaultKeychain(false); st.code != 0 {
			fmt.Fprintf(in.stderr, "security: SecKeychainCopyDefault: %s\n", st.msg)
			return st.code
		}
	}
	if _, st := readKeychainFile(path); st.code != 0 {
		fmt.Fprintf(in.stderr, "security: SecKeychainLock %s: %s\n", name, st.msg)
		return st.code
	}
	sess.lock(keychainKey(path))
	in.dirty = true
	return 0
}

func (in *inv) secSetPassword(args []string) int {
	opts, rest, ok := getopt(args, "op", "")
	if !ok || len(rest) > 1 {
		return in.secUsage("set-keychain-password", "[-o oldPassword] [-p newPassword] [keychain]")
	}
	var path string
	if len(rest) == 1 {
		path = rest[0]
	} else {
		var st osStatus
		if path, st = in.defaultKeychain(false); st.code != 0 {
			fmt.Fprintf(in.stderr, "security: SecKeychainCopyDefault: %s\n", st.msg)
			return st.code
		}
	}
	oldPW := []byte(opts['o'])
	if _, ok := opts['o']; !ok {
		oldPW = in.getpass("Old Password: ")
	}
	newPW := []byte(opts['p'])
	if _, ok := opts['p']; !ok {
		newPW = in.getpass("New Password: ")
		if again := in.getpass("Retype New Password: "); !bytes.Equal(newPW, again) {
			fmt.Fprintln(in.stderr, "security: try again")
			return 1
		}
	}
	fail := func(st osStatus) int {
		fmt.Fprintf(in.stderr, "security: error changing password for \"%s\": %s\n", path, st.msg)
		return st.code
	}
	// "lock keychain first to remove existing credentials"
	// (keychain_set_settings.c): the old password must be right even when
	// the keychain was unlocked in this session.
	sess, key := in.callerSession(), keychainKey(path)
	sess.lock(key)
	in.dirty = true
	data, err := os.ReadFile(path)
	if err != nil {
		if _, st := readKeychainFile(path); st.code != 0 {
			return fail(st)
		}
		return fail(errSecInvalidKeychain)
	}
	out, err := rekeyKeychain(data, oldPW, newPW)
	switch {
	case errors.Is(err, errKeychainPassphrase):
		return fail(errSecAuthFailed)
	case err != nil:
		return fail(errSecInvalidKeychain)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fail(errSecNoSuchKeychain)
	}
	uid, gid := fileOwner(fi)
	if err := writeFileAtomic(path, out, fi.Mode().Perm(), uid, gid); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fail(errUnixPermission)
		}
		return fail(errSecInvalidKeychain)
	}
	// Assumed: the change decodes the keychain with the old password, which
	// leaves it unlocked in the caller's session. Other sessions keep it
	// unlocked too: the master key did not change.
	if kf, err := parseKeychainFile(out); err == nil {
		sess.unlock(key, kf.ID)
	}
	return 0
}

func (in *inv) secCreate(args []string) int {
	opts, rest, ok := getopt(args, "p", "P")
	if !ok || len(rest) == 0 {
		return in.secUsage("create-keychain", "[-P] [-p password] [keychains...]")
	}
	for _, kc := range rest {
		path := kc
		if !filepath.IsAbs(path) {
			rec := in.st.userByUID(in.euid)
			if rec == nil {
				fmt.Fprintf(in.stderr, "security: SecKeychainCreate %s: %s\n", kc, errSecNoDefaultKeychain.msg)
				return errSecNoDefaultKeychain.code
			}
			path = filepath.Join(rec.first("NFSHomeDirectory"), "Library", "Keychains", kc)
		}
		var pw []byte
		if v, ok := opts['p']; ok {
			pw = []byte(v)
		} else {
			pw = in.getpass("password for new keychain: ")
			if again := in.getpass("retype password for new keychain: "); !bytes.Equal(pw, again) {
				fmt.Fprintln(in.stderr, "passwords don't match")
				return 1
			}
		}
		fail := func(st osStatus) int {
			fmt.Fprintf(in.stderr, "security: SecKeychainCreate %s: %s\n", kc, st.msg)
			return st.code
		}
		if _, err := os.Lstat(path); err == nil {
			return fail(errSecDuplicateKeychain)
		}
		data, err := newKeychainFile(pw, nil)
		if err != nil {
			return fail(errSecInvalidKeychain)
		}
		if err := writeFileAtomic(path, data, 0o600, -1, -1); err != nil {
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return fail(errUnixNoEntry)
			case errors.Is(err, fs.ErrPermission):
				return fail(errUnixPermission)
			}
			return fail(errSecInvalidKeychain)
		}
		// Assumed: a new keychain is unlocked in the session that made it.
		if kf, err := parseKeychainFile(data); err == nil {
			in.callerSession().unlock(keychainKey(path), kf.ID)
			in.dirty = true
		}
	}
	return 0
}

func (in *inv) secShowInfo(args []string) int {
	if len(args) > 1 {
		return in.secUsage("show-keychain-info", "[keychain]")
	}
	var name string
	if len(args) == 1 {
		name = args[0]
	} else {
		var st osStatus
		if name, st = in.defaultKeychain(false); st.code != 0 {
			fmt.Fprintf(in.stderr, "security: SecKeychainCopyDefault: %s\n", st.msg)
			return st.code
		}
	}
	kf, st := readKeychainFile(name)
	if st.code != 0 {
		fmt.Fprintf(in.stderr, "security: SecKeychainCopySettings %s: %s\n", name, st.msg)
		return st.code
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Keychain %q", name)
	if kf.LockOnSleep {
		b.WriteString(" lock-on-sleep")
	}
	if kf.Timeout > 0 {
		fmt.Fprintf(&b, " timeout=%ds", kf.Timeout)
	} else {
		b.WriteString(" no-timeout")
	}
	fmt.Fprintln(in.stderr, b.String())
	return 0
}

// secPref shows or sets (-s) the caller's default keychain, and shows its
// login keychain.
func (in *inv) secPref(cmd string, args []string) int {
	opts, rest, ok := getopt(args, "d", "s")
	if !ok || len(rest) > 1 {
		return in.secUsage(cmd, "[-d user|system|common|dynamic] [-s [keychain]]")
	}
	login := cmd == "login-keychain"
	_, set := opts['s']
	_, useDomain := opts['d']
	if login && (set || useDomain) {
		// keychain_login in SecurityTool/keychain_list.c compiles out
		// both the setting (SecKeychainSetLogin, SecKeychainSetDomainLogin)
		// and, with -d, the showing (SecKeychainCopyDomainLogin):
		// "#if 0 ... #else result = 1; #endif". So -s and -d return 1,
		// print nothing and set nothing; security.c's execute_command
		// prints a usage only for 2, and in -i mode main adds
		// "login-keychain: returned 1" (apple-open-source/macos
		// SecurityTool/keychain_list.c, security.c; facts issue 15 K1). A
		// bad domain still fails first, in getopt, with parse_domain's
		// "Invalid domain" (2).
		if d, ok := opts['d']; ok && !validDomain(d) {
			fmt.Fprintf(in.stderr, "security: Invalid domain: %s\n", d)
			return in.secUsage(cmd, "[-d user|system|common|dynamic] [-s [keychain]]")
		}
		return 1
	}
	if d, ok := opts['d']; ok && d != "user" {
		if d == "system" && cmd == "default-keychain" {
			fmt.Fprintf(in.stdout, "    %q\n", "/Library/Keychains/System.keychain")
			return 0
		}
		return in.secUsage(cmd, "[-d user|system|common|dynamic] [-s [keychain]]")
	}
	if set {
		if len(rest) != 1 {
			return in.secUsage(cmd, "[-d user|system|common|dynamic] [-s [keychain]]")
		}
		if in.st.KeychainPrefs == nil {
			in.st.KeychainPrefs = map[int]KeychainPrefs{}
		}
		p := in.st.KeychainPrefs[in.euid]
		p.Default = rest[0]
		in.st.KeychainPrefs[in.euid] = p
		in.dirty = true
		return 0
	}
	path, st := in.defaultKeychain(login)
	if st.code != 0 {
		fmt.Fprintf(in.stderr, "security: SecKeychainCopyDefault: %s\n", st.msg)
		return st.code
	}
	fmt.Fprintf(in.stdout, "    %q\n", path)
	return 0
}

// validDomain reports whether d names a preference domain as parse_domain
// matches it: a prefix of user, system, common or dynamic (keychain_list.c).
func validDomain(d string) bool {
	for _, name := range []string{"user", "system", "common", "dynamic"} {
		if strings.HasPrefix(name, d) {
			return true
		}
	}
	return false
}

// systemKeychain is the system domain's search list.
const systemKeychain = "/Library/Keychains/System.keychain"

// secList is list-keychains [-d user|system|common|dynamic] [-s [keychain...]]
// (keychain_list.c; facts K1, K2): without -s it prints the search list, each
// path quoted and indented by four spaces; with -s it replaces the list with
// the keychains given (nothing is added to what was there). -d names the
// preference domain; without it the list is the user's followed by the
// system's.
//
// The user domain lives in the user's session (facts K2, §5.4): a process
// that is not in a session of its own uid (lockstepd's children, even as
// the user) sees only the system keychain, and what it sets does not reach
// the user (assumed: it exits 0 all the same, so only reading the list back
// in the user's session shows it). Domains other than user and system are
// not modelled.
func (in *inv) secList(args []string) int {
	const usage = "[-h] [-d user|system|common|dynamic] [-s [keychain...]]"
	opts, rest, ok := getopt(args, "d", "s")
	if !ok {
		return in.secUsage("list-keychains", usage)
	}
	domain, useDomain := "user", false
	if d, ok := opts['d']; ok {
		useDomain = true
		domain = ""
		for _, name := range []string{"user", "system", "common", "dynamic"} {
			if d != "" && strings.HasPrefix(name, d) {
				domain = name
				break
			}
		}
		if domain == "" {
			fmt.Fprintf(in.stderr, "security: Invalid domain: %s\n", d)
			return 2
		}
	}
	if domain != "user" && domain != "system" {
		fmt.Fprintf(in.stderr, "security: SecKeychainCopyDomainSearchList %s: %s\n", domain, errSecNoSuchKeychain.msg)
		return 1
	}
	reach := in.userDomainReachable()
	if _, set := opts['s']; set {
		if domain != "user" {
			fmt.Fprintf(in.stderr, "security: SecKeychainSetDomainSearchList %s: %s\n", domain, errUnixPermission.msg)
			return 1
		}
		if !reach {
			return 0
		}
		list := make([]string, 0, len(rest))
		for _, kc := range rest {
			if !filepath.IsAbs(kc) {
				rec := in.st.userByUID(in.euid)
				if rec == nil {
					continue
				}
				kc = filepath.Join(rec.first("NFSHomeDirectory"), "Library", "Keychains", kc)
			}
			list = append(list, kc)
		}
		p := in.st.KeychainPrefs[in.euid]
		p.SearchList, p.SearchListSet = list, true
		if in.st.KeychainPrefs == nil {
			in.st.KeychainPrefs = map[int]KeychainPrefs{}
		}
		in.st.KeychainPrefs[in.euid] = p
		in.dirty = true
		return 0
	}
	if len(rest) > 0 {
		return in.secUsage("list-keychains", usage)
	}
	var list []string
	if domain == "user" && reach {
		list = in.userSearchList()
	}
	if !useDomain || domain == "system" {
		list = append(list, systemKeychain)
	}
	for _, kc := range list {
		fmt.Fprintf(in.stdout, "    \"%s\"\n", kc)
	}
	return 0
}

// userDomainReachable reports whether the caller is in a security session
// of its own uid, where its user preference domain (the search list) is.
func (in *inv) userDomainReachable() bool {
	s := in.callerSession()
	return s.ID != SystemSession && s.UID == in.euid
}

// userSearchList is the caller's user domain search list: as set, or the
// login keychain.
func (in *inv) userSearchList() []string {
	p := in.st.KeychainPrefs[in.euid]
	if p.SearchListSet {
		return slices.Clone(p.SearchList)
	}
	if def, st := in.defaultKeychain(true); st.code == 0 {
		return []string{def}
	}
	return nil
}
