package macsim

import (
	"fmt"
	"os"
	"strings"
)

// scutil reads commands from stdin (`show State:/Users/ConsoleUser`) and
// prints the dictionary of the console session; at the login window the
// name is "loginwindow".
func (in *inv) scutil() int {
	if len(in.args) > 0 {
		fmt.Fprintf(in.stderr, "macsim: scutil %s is not simulated\n", strings.Join(in.args, " "))
		return 1
	}
	for {
		line, eof := in.readCommand()
		fields := strings.Fields(line)
		if len(fields) > 0 {
			switch fields[0] {
			case "q", "quit", "exit":
				return 0
			case "show", "get":
				if len(fields) == 2 && fields[1] == "State:/Users/ConsoleUser" && in.st.ConsoleUser != "" {
					in.printConsoleUser()
				} else {
					fmt.Fprintln(in.stdout, "  No such key")
				}
			}
		}
		if eof {
			return 0
		}
	}
}

func (in *inv) readCommand() (string, bool) {
	var b [1]byte
	var line []byte
	for {
		n, err := os.Stdin.Read(b[:])
		if n == 1 {
			in.rec.StdinBytes++
			if b[0] == '\n' {
				return string(line), false
			}
			line = append(line, b[0])
			continue
		}
		if err != nil {
			return string(line), true
		}
	}
}

func (in *inv) printConsoleUser() {
	name, uid, gid, long := "loginwindow", 0, 0, ""
	if rec := in.st.user(in.st.ConsoleUser); rec != nil {
		name, uid, gid, long = in.st.ConsoleUser, rec.uid(), rec.gid(), rec.realName()
	}
	w := in.stdout
	fmt.Fprintln(w, "<dictionary> {")
	fmt.Fprintf(w, "  GID : %d\n", gid)
	fmt.Fprintf(w, "  Name : %s\n", name)
	fmt.Fprintln(w, "  SessionInfo : <array> {")
	fmt.Fprintln(w, "    0 : <dictionary> {")
	fmt.Fprintln(w, "      kCGSSessionAuditIDKey : 100008")
	fmt.Fprintf(w, "      kCGSSessionGroupIDKey : %d\n", gid)
	fmt.Fprintln(w, "      kCGSSessionIDKey : 257")
	fmt.Fprintln(w, "      kCGSSessionLoginwindowSafeLogin : FALSE")
	fmt.Fprintln(w, "      kCGSSessionOnConsoleKey : TRUE")
	fmt.Fprintln(w, "      kCGSSessionSystemSafeBoot : FALSE")
	fmt.Fprintf(w, "      kCGSSessionUserIDKey : %d\n", uid)
	fmt.Fprintf(w, "      kCGSSessionUserNameKey : %s\n", name)
	fmt.Fprintln(w, "      kCGSessionLoginDoneKey : TRUE")
	if long != "" {
		fmt.Fprintf(w, "      kCGSessionLongUserNameKey : %s\n", long)
	}
	fmt.Fprintln(w, "    }")
	fmt.Fprintln(w, "  }")
	fmt.Fprintf(w, "  UID : %d\n", uid)
	fmt.Fprintln(w, "}")
}
