package macsim

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// sysadminctl's password prompts for "-" values. No capture of them exists
// (macos-tools.md §3.4, §11.4-5), so the texts and their order are assumed;
// the quirk sysadminctl-prompts switches between plausible variants so that
// tests can show the platform answers each correctly or refuses at once:
//
//	named       "Enter admin password for A:", "Enter new password for U:",
//	            "Re-enter new password for U:", "Enter password for U:";
//	            the administrator's first (the default)
//	realname    the same, naming each account by its full name
//	user-first  named, the user's prompts before the administrator's
//	generic     the administrator's named, the user's without a name
//	            ("New password:", "Retype new password:", "Password:")
//	stderr      named, but written to stderr and read from stdin even when
//	            there is a terminal
//	ambiguous   every prompt is "Password:"
var saPromptVariants = []string{"named", "realname", "user-first", "generic", "stderr", "ambiguous"}

// saAsk is one secret sysadminctl asks for.
type saAsk struct {
	admin   bool   // the administrator's password (else the user's)
	confirm bool   // a new password, asked twice
	account string // short name of the account it belongs to
}

// saSecrets asks for every "-" secret of an operation: the administrator's
// (-adminPassword -) and the user's (flag userFlag, "-newPassword" asked
// twice, or "-password"), in the variant's order. Values given in argv are
// returned as they are. ok is false when a new password and its
// confirmation differ.
func (in *inv) saSecrets(flags map[string]string, user, userFlag string) (adminPW, userPW []byte, ok bool) {
	adminPW, userPW = []byte(flags["-adminPassword"]), []byte(flags[userFlag])
	var asks []saAsk
	if flags["-adminUser"] != "" && flags["-adminPassword"] == "-" {
		asks = append(asks, saAsk{admin: true, account: flags["-adminUser"]})
	}
	if flags[userFlag] == "-" {
		u := saAsk{confirm: userFlag == "-newPassword", account: user}
		if in.st.Quirks.SysadminctlPrompts == "user-first" {
			asks = append([]saAsk{u}, asks...)
		} else {
			asks = append(asks, u)
		}
	}
	for _, a := range asks {
		first, again := in.saPromptTexts(a)
		pw := in.saGetpass(first)
		if a.confirm {
			if b := in.saGetpass(again); !bytes.Equal(pw, b) {
				in.nslog("Passwords do not match.") // assumed
				return nil, nil, false
			}
		}
		if a.admin {
			adminPW = pw
		} else {
			userPW = pw
		}
	}
	return adminPW, userPW, true
}

// saPromptTexts are the prompt (and the confirmation prompt) for a.
func (in *inv) saPromptTexts(a saAsk) (first, again string) {
	name := a.account
	v := in.st.Quirks.SysadminctlPrompts
	if v == "realname" {
		if rec := in.st.user(name); rec != nil {
			name = rec.realName()
		}
	}
	switch {
	case v == "ambiguous":
		return "Password:", "Password:"
	case a.admin:
		return "Enter admin password for " + name + ":", ""
	case v == "generic" && a.confirm:
		return "New password:", "Retype new password:"
	case v == "generic":
		return "Password:", ""
	case a.confirm:
		return "Enter new password for " + name + ":", "Re-enter new password for " + name + ":"
	}
	return "Enter password for " + name + ":", ""
}

// saGetpass asks one secret: as getpass does, or, in the stderr variant,
// with the prompt on stderr and the answer from stdin whatever the terminal.
func (in *inv) saGetpass(prompt string) []byte {
	if in.st.Quirks.SysadminctlPrompts != "stderr" {
		return in.getpass(prompt)
	}
	in.rec.Prompts = append(in.rec.Prompts, prompt)
	_, _ = io.WriteString(in.stderr, prompt)
	return in.readLine(os.Stdin)
}

func validPromptVariant(v string) error {
	for _, k := range saPromptVariants {
		if v == k {
			return nil
		}
	}
	return fmt.Errorf("sysadminctl-prompts: unknown variant %q (known: %v)", v, saPromptVariants)
}
