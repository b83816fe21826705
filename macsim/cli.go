package macsim

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

const cliUsage = `usage: macsim <command> [flags]

  init   --dir D [--spec FILE]      build a simulated Mac in D (and its tools dir)
  tools  --dir D                    (re)create D/tools: the macsim binary + tool symlinks
  state  --dir D [--json]           print the non-secret truth as JSON
  check  --dir D --user U --what account|filevault|keychain [--keychain PATH]
                                    read a password from stdin; print match/mismatch (exit 0/1)
  fault  --dir D --tool T [--verb V] [--arg A] [--count N]
         (--fail MSG [--exit N] [--stdout S] | --hang | --crash-caller)
  fault  --dir D --clear | --list
  records --dir D                   print the invocation record (JSONL)
  login  --dir D --user U           log U in at the screen (password on stdin): the
                                    console user, with the login keychain unlocked in
                                    U's GUI session when the password opens it
  logout --dir D                    end the console user's session
  sessions --dir D                  print the security sessions and what is unlocked in each
  quirk  --dir D --set NAME=VALUE   switch a behaviour (unlock-accepts-any=on|off)

Called as dscl, sysadminctl, fdesetup, security, diskutil, scutil or launchctl
(the symlinks in D/tools), it acts as that tool on the state in D/state.
`

func runCLI(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, cliUsage)
		return 2
	}
	fs := flag.NewFlagSet("macsim "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "simulated Mac directory")
	var err error
	switch args[0] {
	case "__hang":
		for {
			time.Sleep(time.Hour)
		}
	case "init":
		spec := fs.String("spec", "", "JSON spec file (default: a built-in Mac)")
		if fs.Parse(args[1:]) != nil || *dir == "" {
			return 2
		}
		sp := DefaultSpec()
		if *spec != "" {
			if sp, err = ReadSpec(*spec); err != nil {
				break
			}
		}
		if err = Init(*dir, sp); err == nil {
			err = installSelf(*dir)
		}
	case "tools":
		if fs.Parse(args[1:]) != nil || *dir == "" {
			return 2
		}
		err = installSelf(*dir)
	case "state":
		fs.Bool("json", true, "print JSON (the only format)")
		if fs.Parse(args[1:]) != nil || *dir == "" {
			return 2
		}
		var s *Sim
		if s, err = Open(*dir); err == nil {
			var snap *Snapshot
			if snap, err = s.Snapshot(); err == nil {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				err = enc.Encode(snap)
			}
		}
	case "check":
		user := fs.String("user", "", "short name")
		what := fs.String("what", "account", "account, filevault or keychain")
		kc := fs.String("keychain", "", "keychain file (default: the user's login keychain)")
		if fs.Parse(args[1:]) != nil || *dir == "" || *user == "" {
			return 2
		}
		return check(*dir, *user, *what, *kc, stdin, stdout, stderr)
	case "fault":
		var f Fault
		fs.StringVar(&f.Tool, "tool", "", "tool name")
		fs.StringVar(&f.Verb, "verb", "", "verb (dscl command, sysadminctl operation, security command, ...)")
		fs.StringVar(&f.Arg, "arg", "", "only when an argument equals this (or ends in /this)")
		fs.StringVar(&f.Fail, "fail", "", "message to print on stderr")
		fs.StringVar(&f.Stdout, "stdout", "", "message to print on stdout")
		fs.IntVar(&f.Exit, "exit", 0, "exit status of the failed step")
		fs.BoolVar(&f.Hang, "hang", false, "block until killed")
		fs.BoolVar(&f.CrashCaller, "crash-caller", false, "apply the step, then SIGKILL the caller")
		fs.IntVar(&f.Count, "count", 0, "fire this many times (0: always)")
		clear := fs.Bool("clear", false, "remove all faults")
		list := fs.Bool("list", false, "list faults")
		if fs.Parse(args[1:]) != nil || *dir == "" {
			return 2
		}
		var s *Sim
		if s, err = Open(*dir); err != nil {
			break
		}
		switch {
		case *clear:
			err = s.ClearFaults()
		case *list:
			var snap *Snapshot
			if snap, err = s.Snapshot(); err == nil {
				err = json.NewEncoder(stdout).Encode(snap.Faults)
			}
		default:
			if f.Fail != "" && f.Exit == 0 && f.Tool != "sysadminctl" {
				f.Exit = 1
			}
			err = s.AddFault(f)
		}
	case "records":
		if fs.Parse(args[1:]) != nil || *dir == "" {
			return 2
		}
		var s *Sim
		if s, err = Open(*dir); err == nil {
			var f *os.File
			if f, err = os.Open(s.RecordPath()); err == nil {
				_, err = io.Copy(stdout, f)
				f.Close()
			}
		}
	case "login":
		user := fs.String("user", "", "short name")
		if fs.Parse(args[1:]) != nil || *dir == "" || *user == "" {
			return 2
		}
		var s *Sim
		if s, err = Open(*dir); err == nil {
			var pw []byte
			if pw, err = readSecretLine(stdin); err == nil {
				err = s.Login(*user, pw)
			}
		}
	case "logout":
		if fs.Parse(args[1:]) != nil || *dir == "" {
			return 2
		}
		var s *Sim
		if s, err = Open(*dir); err == nil {
			err = s.Logout()
		}
	case "sessions":
		if fs.Parse(args[1:]) != nil || *dir == "" {
			return 2
		}
		var s *Sim
		if s, err = Open(*dir); err == nil {
			var ss []Session
			if ss, err = s.Sessions(); err == nil {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				err = enc.Encode(ss)
			}
		}
	case "quirk":
		set := fs.String("set", "", "NAME=VALUE")
		if fs.Parse(args[1:]) != nil || *dir == "" || !strings.Contains(*set, "=") {
			return 2
		}
		var s *Sim
		if s, err = Open(*dir); err == nil {
			name, value, _ := strings.Cut(*set, "=")
			err = s.SetQuirk(name, value)
		}
	default:
		fmt.Fprint(stderr, cliUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "macsim %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func installSelf(dir string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return InstallTools(dir, exe)
}

func check(dir, user, what, kc string, stdin io.Reader, stdout, stderr io.Writer) int {
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintf(stderr, "macsim check: %v\n", err)
		return 2
	}
	line, err := readSecretLine(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "macsim check: %v\n", err)
		return 2
	}
	var ok bool
	switch what {
	case "account":
		ok, err = s.CheckPassword(user, line)
	case "filevault":
		ok, err = s.CheckFileVault(user, line)
	case "keychain":
		if kc == "" {
			kc, err = s.LoginKeychainPath(user)
		}
		if err == nil {
			_, err = s.OpenKeychain(kc, line)
			ok = err == nil
			if errors.Is(err, errKeychainPassphrase) {
				err = nil
			}
		}
	default:
		err = fmt.Errorf("--what must be account, filevault or keychain")
	}
	if err != nil {
		fmt.Fprintf(stderr, "macsim check: %v\n", err)
		return 2
	}
	if ok {
		fmt.Fprintln(stdout, "match")
		return 0
	}
	fmt.Fprintln(stdout, "mismatch")
	return 1
}

// readSecretLine reads one line (a password) from r, without its newline.
func readSecretLine(r io.Reader) ([]byte, error) {
	line, err := bufio.NewReader(r).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	return line, nil
}
