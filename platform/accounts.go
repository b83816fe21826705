package platform

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Account is a local account as Open Directory (dscl) describes it. os/user
// is never used: without cgo on macOS it only sees /etc/passwd.
type Account struct {
	Name         string
	RealName     string
	UID          int
	GID          int
	Home         string
	Shell        string
	GeneratedUID string
	// SecureToken: AuthenticationAuthority holds ";SecureToken;".
	SecureToken bool
	// Hidden: IsHidden is 1.
	Hidden bool
	// Admin: a member of the admin group (GroupMembership).
	Admin bool
	// Disabled: AuthenticationAuthority holds the DisabledUser tag.
	Disabled bool
	// AuthenticationAuthority as read, for diagnostics.
	AuthenticationAuthority []string
}

// Credential is the identity keychain steps run as.
func (a Account) Credential() *Credential {
	return &Credential{UID: uint32(a.UID), GID: uint32(a.GID), User: a.Name, Home: a.Home}
}

// Accounts reads and changes local accounts through dscl and sysadminctl.
type Accounts struct {
	r *Runner
}

// NewAccounts returns Accounts using r.
func NewAccounts(r *Runner) *Accounts { return &Accounts{r: r} }

var lookupKeys = []string{
	"RecordName", "RealName", "UniqueID", "PrimaryGroupID", "NFSHomeDirectory", "UserShell",
	"GeneratedUID", "AuthenticationAuthority", "IsHidden",
}

// dsclFailure turns a failed dscl run into a *ToolError.
func dsclFailure(verb string, res *Result) error {
	code, name, msg := parseDsclStatus(string(res.Stdout), string(res.Stderr), res.Exit)
	return &ToolError{Tool: Dscl, Verb: verb, Exit: res.Exit, Status: code, StatusName: name, Message: msg,
		Stdout: res.stdoutText(), Stderr: res.stderrText(), Err: dsSentinel(code)}
}

// Lookup reads the account name.
func (a *Accounts) Lookup(ctx context.Context, name string) (Account, error) {
	acct, err := a.record(ctx, name)
	if err != nil {
		return Account{}, err
	}
	members, err := a.adminMembers(ctx)
	if err != nil {
		return Account{}, err
	}
	acct.Admin = slices.Contains(members, name)
	return acct, nil
}

// record reads the user record (everything but admin membership).
func (a *Accounts) record(ctx context.Context, name string) (Account, error) {
	if err := checkName(name); err != nil {
		return Account{}, err
	}
	res, err := a.r.Run(ctx, Cmd{Tool: Dscl, Args: append([]string{".", "-read", "/Users/" + name}, lookupKeys...)})
	if err != nil {
		return Account{}, err
	}
	if res.Exit != 0 {
		return Account{}, dsclFailure("read", res)
	}
	rec := parseDsclRecord(string(res.Stdout))
	acct := Account{Name: name, AuthenticationAuthority: rec["AuthenticationAuthority"]}
	get := func(k string) string { return strings.Join(rec[k], " ") }
	acct.RealName, acct.Home, acct.Shell, acct.GeneratedUID = get("RealName"), get("NFSHomeDirectory"), get("UserShell"), get("GeneratedUID")
	acct.Hidden = get("IsHidden") == "1"
	for _, v := range acct.AuthenticationAuthority {
		switch {
		case v == ";SecureToken;":
			acct.SecureToken = true
		case v == "DisabledUser" || strings.HasPrefix(v, ";DisabledUser;"):
			acct.Disabled = true
		}
	}
	bad := func(k string) error {
		return &ToolError{Tool: Dscl, Verb: "read", Message: fmt.Sprintf("account %s has no valid %s", name, k),
			Stdout: res.stdoutText(), Stderr: res.stderrText(), Err: ErrToolFailed}
	}
	if acct.UID, err = strconv.Atoi(get("UniqueID")); err != nil {
		return Account{}, bad("UniqueID")
	}
	if acct.GID, err = strconv.Atoi(get("PrimaryGroupID")); err != nil {
		return Account{}, bad("PrimaryGroupID")
	}
	if acct.Home == "" {
		return Account{}, bad("NFSHomeDirectory")
	}
	if acct.GeneratedUID == "" {
		return Account{}, bad("GeneratedUID")
	}
	return acct, nil
}

func (a *Accounts) adminMembers(ctx context.Context) ([]string, error) {
	res, err := a.r.Run(ctx, Cmd{Tool: Dscl, Args: []string{".", "-read", "/Groups/admin", "GroupMembership"}})
	if err != nil {
		return nil, err
	}
	if res.Exit != 0 {
		return nil, dsclFailure("read", res)
	}
	return parseDsclRecord(string(res.Stdout))["GroupMembership"], nil
}

// List returns the short names of all local accounts with their UniqueID.
func (a *Accounts) List(ctx context.Context) (map[string]int, error) {
	res, err := a.r.Run(ctx, Cmd{Tool: Dscl, Args: []string{".", "-list", "/Users", "UniqueID"}})
	if err != nil {
		return nil, err
	}
	if res.Exit != 0 {
		return nil, dsclFailure("list", res)
	}
	out := map[string]int{}
	for n, v := range parseDsclList(string(res.Stdout)) {
		if uid, err := strconv.Atoi(v); err == nil {
			out[n] = uid
		}
	}
	return out, nil
}

// VerifyPassword checks pw against the account with `dscl /Local/Default
// -authonly NAME`, the password answering its "Password:" prompt on stdin.
// nil means the password is right; otherwise ErrWrongPassword,
// ErrAccountDisabled, ErrNoSuchUser, ErrPasswordExpired … in a *ToolError.
func (a *Accounts) VerifyPassword(ctx context.Context, name string, pw []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkSecret("password", pw); err != nil {
		return err
	}
	in := lines(pw)
	defer wipe(in)
	res, err := a.r.Run(ctx, Cmd{Tool: Dscl, Args: []string{"/Local/Default", "-authonly", name}, Stdin: in})
	if err != nil {
		return err
	}
	if res.Exit != 0 {
		return dsclFailure("authonly", res)
	}
	// Success prints nothing; anything on stdout is a failure text even if
	// the exit status says otherwise (JumpCloud treats empty output as success).
	if len(strings.TrimSpace(string(res.Stdout))) != 0 {
		return dsclFailure("authonly", res)
	}
	return nil
}

// ChangePassword changes the password with the old one, which keeps the
// account's SecureToken and FileVault unlock in step. It runs
// `dscl . -passwd /Users/NAME` as the account itself with "NEW\nOLD\n" on
// stdin: dscl asks "New Password:", tries a reset, which a non-root caller
// may not do (eDSPermissionError), so it asks "Permission denied. Please
// enter user's old password:" and makes it a change with the old password
// (macos-tools.md §2.2). Run as root the first attempt would be a reset for
// a user without a SecureToken (and, on older macOS, for token users too),
// leaving FileVault on the old password; run as the user it is a change on
// every version. This prompt form is the one observed on current macOS and
// keeps exit statuses meaningful; dscl's interactive mode would always exit
// 0 and cannot carry passwords that start with a quote or a blank. The old
// password is checked with -authonly first (a clean ErrWrongPassword, and
// nothing runs with a wrong one); afterwards the new password must
// authenticate and a SecureToken the account had must still be there. The
// login keychain is not touched (Keychains.Rekey does that).
func (a *Accounts) ChangePassword(ctx context.Context, name string, oldPW, newPW []byte) error {
	if err := checkSecret("new password", newPW); err != nil {
		return err
	}
	if err := checkSecret("old password", oldPW); err != nil {
		return err
	}
	before, err := a.record(ctx, name)
	if err != nil {
		return err
	}
	if err := a.VerifyPassword(ctx, name, oldPW); err != nil {
		return err
	}
	in := lines(newPW, oldPW)
	defer wipe(in)
	res, err := a.r.Run(ctx, Cmd{Tool: Dscl, Args: []string{".", "-passwd", "/Users/" + name}, Stdin: in, As: before.Credential()})
	if err != nil {
		return err
	}
	if res.Exit != 0 || strings.Contains(string(res.Stdout), "DS error") {
		return dsclFailure("passwd", res)
	}
	return a.verifyApplied(ctx, Dscl, "passwd", res, name, newPW, before.SecureToken)
}

// verifyApplied observes that newPW now authenticates name and that a token
// the account had is still there.
func (a *Accounts) verifyApplied(ctx context.Context, tool Tool, verb string, res *Result, name string, newPW []byte, hadToken bool) error {
	notApplied := func(msg string) error {
		return &ToolError{Tool: tool, Verb: verb, Exit: res.Exit, Message: msg, Stdout: res.stdoutText(), Stderr: res.stderrText(), Err: ErrNotApplied}
	}
	if err := a.VerifyPassword(ctx, name, newPW); err != nil {
		if errors.Is(err, ErrWrongPassword) {
			return notApplied("the new password does not authenticate")
		}
		return err
	}
	if hadToken {
		after, err := a.record(ctx, name)
		if err != nil {
			return err
		}
		if !after.SecureToken {
			return notApplied("the account lost its SecureToken")
		}
	}
	return nil
}

// ResetPassword sets a new password without the old one, authorised by a
// SecureToken administrator (adminUser, adminPW), which keeps the target's
// SecureToken and FileVault unlock in step (macos-tools.md §3.4):
//
//	sysadminctl -adminUser A -adminPassword - -resetPasswordFor U -newPassword -
//
// The passwords answer sysadminctl's prompts on a pseudo-terminal: "-" is
// documented as "request prompt", the prompt is a terminal prompt, and
// whether sysadminctl reads stdin without one is unconfirmed (§11.4); with the
// terminal as stdin too, either way works. sysadminctl exits 0 on failure,
// so its stderr is parsed and the result verified: the new password must
// authenticate and a token the account had must still be ENABLED. The login
// keychain is never re-keyed by a reset; move it aside and create a new one.
func (a *Accounts) ResetPassword(ctx context.Context, name string, newPW []byte, adminUser string, adminPW []byte) error {
	if err := checkName(adminUser); err != nil {
		return err
	}
	if adminUser == name {
		return fmt.Errorf("reset %s authorised by itself: use ChangePassword: %w", name, ErrNotAdmin)
	}
	if err := checkSecret("new password", newPW); err != nil {
		return err
	}
	if err := checkSecret("admin password", adminPW); err != nil {
		return err
	}
	before, err := a.record(ctx, name)
	if err != nil {
		return err
	}
	res, err := a.r.Run(ctx, Cmd{
		Tool:    Sysadminctl,
		Args:    []string{"-adminUser", adminUser, "-adminPassword", "-", "-resetPasswordFor", name, "-newPassword", "-"},
		Prompts: sysadminctlPrompts(name, adminPW, newPW),
	})
	if err != nil {
		return err
	}
	if err := sysadminctlError("resetPasswordFor", res); err != nil {
		return err
	}
	if err := a.verifyApplied(ctx, Sysadminctl, "resetPasswordFor", res, name, newPW, false); err != nil {
		return err
	}
	if before.SecureToken {
		on, err := NewFileVault(a.r).SecureTokenStatus(ctx, name)
		if err != nil {
			return err
		}
		if !on {
			return &ToolError{Tool: Sysadminctl, Verb: "resetPasswordFor", Message: "the account lost its SecureToken",
				Stderr: res.stderrText(), Err: ErrNotApplied}
		}
	}
	return nil
}

// sysadminctlError reports the failure a sysadminctl run printed, if any.
func sysadminctlError(verb string, res *Result) error {
	code, msg, sentinel, failed := sysadminctlFailure(sysadminctlLines(string(res.Stderr)))
	if !failed && res.Exit == 0 {
		return nil
	}
	if !failed {
		sentinel, msg = ErrToolFailed, lastLine([]byte(strings.TrimRight(string(res.Stderr), "\n")))
	}
	return &ToolError{Tool: Sysadminctl, Verb: verb, Exit: res.Exit, Status: code, StatusName: dsName(code), Message: msg,
		Stdout: res.stdoutText(), Stderr: res.stderrText(), Err: sentinel}
}

func dsName(code int) string {
	for n, c := range dsStatuses {
		if c == code {
			return n
		}
	}
	return ""
}

// sysadminctlPrompts answers sysadminctl's password prompts: a prompt that
// mentions an administrator gets adminPW, any other password prompt
// (new password, its confirmation, the user's password) gets userPW. The
// target's own name is removed from the prompt first, so an account called
// "admin" does not look like an administrator prompt.
func sysadminctlPrompts(target string, adminPW, userPW []byte) []Prompt {
	strip := regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(target) + `\b`)
	return []Prompt{
		{Match: func(p string) bool { return strings.Contains(strip.ReplaceAllString(p, ""), "admin") }, Answer: adminPW},
		{Match: func(p string) bool { return strings.Contains(p, "password") || strings.Contains(p, "passphrase") }, Answer: userPW},
	}
}
