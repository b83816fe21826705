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
	// Mobile: a mobile account cached from a network directory (Active
	// Directory and the like): AuthenticationAuthority holds LocalCachedUser
	// or NetLogon, or the record has an OriginalNodeName (§2.6; NoMAD's
	// test). Its password belongs to that directory, not to the Mac.
	Mobile bool
	// OriginalNodeName is the directory node a mobile account came from.
	OriginalNodeName string
	// NetworkHome: the home is not on this Mac (a HomeDirectory URL, or an
	// NFSHomeDirectory under /Network/), so its keychain is not either.
	NetworkHome bool
	// PasswordLastSet is accountPolicyData's passwordLastSetTime: when the
	// password last changed, observed without authenticating; zero when the
	// record does not say.
	PasswordLastSet float64
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
	"GeneratedUID", "AuthenticationAuthority", "IsHidden", "OriginalNodeName", "HomeDirectory",
	"accountPolicyData",
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

// Read reads the user record: everything Lookup returns but the admin
// group membership, in one dscl run.
func (a *Accounts) Read(ctx context.Context, name string) (Account, error) {
	return a.record(ctx, name)
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
	acct.OriginalNodeName = get("OriginalNodeName")
	acct.Mobile = acct.OriginalNodeName != ""
	for _, v := range acct.AuthenticationAuthority {
		switch {
		case v == ";SecureToken;":
			acct.SecureToken = true
		case v == "DisabledUser" || strings.HasPrefix(v, ";DisabledUser;"):
			acct.Disabled = true
		case strings.HasPrefix(v, ";LocalCachedUser;"), strings.HasPrefix(v, ";NetLogon;"):
			acct.Mobile = true
		}
	}
	acct.NetworkHome = strings.Contains(get("HomeDirectory"), "<url>") || strings.HasPrefix(acct.Home, "/Network/")
	acct.PasswordLastSet = passwordLastSet(rec["accountPolicyData"])
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

// Verified is what a change or reset observed once it was done.
type Verified struct {
	// SecureToken: the account had a SecureToken and sysadminctl
	// -secureTokenStatus says ENABLED afterwards, so FileVault follows the
	// new password.
	SecureToken bool
}

// ChangePassword changes acct's password with the old one, which keeps the
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
// 0 and cannot carry passwords that start with a quote or a blank.
//
// The old password is not tried first: the caller has just verified it, and
// every extra attempt is a login the Mac logs (a wrong one fails here with
// ErrWrongPassword and changes nothing). Afterwards the new password must
// authenticate and, for an account with a SecureToken, the token must still
// be ENABLED. The login keychain is not touched (Keychains.Rekey does that).
func (a *Accounts) ChangePassword(ctx context.Context, acct Account, oldPW, newPW []byte) (Verified, error) {
	if err := checkSecret("new password", newPW); err != nil {
		return Verified{}, err
	}
	if err := checkSecret("old password", oldPW); err != nil {
		return Verified{}, err
	}
	if err := checkName(acct.Name); err != nil {
		return Verified{}, err
	}
	in := lines(newPW, oldPW)
	defer wipe(in)
	res, err := a.r.Run(ctx, Cmd{Tool: Dscl, Args: []string{".", "-passwd", "/Users/" + acct.Name}, Stdin: in, As: acct.Credential()})
	if err != nil {
		return Verified{}, err
	}
	if res.Exit != 0 || strings.Contains(string(res.Stdout), "DS error") {
		return Verified{}, dsclFailure("passwd", res)
	}
	return a.verifyApplied(ctx, Dscl, "passwd", res, acct, newPW)
}

// verifyApplied observes that newPW now authenticates acct and that a token
// the account had is still ENABLED.
func (a *Accounts) verifyApplied(ctx context.Context, tool Tool, verb string, res *Result, acct Account, newPW []byte) (Verified, error) {
	notApplied := func(msg string) error {
		return &ToolError{Tool: tool, Verb: verb, Exit: res.Exit, Message: msg, Stdout: res.stdoutText(), Stderr: res.stderrText(), Err: ErrNotApplied}
	}
	switch err := a.VerifyPassword(ctx, acct.Name, newPW); {
	case err == nil, errors.Is(err, ErrPasswordExpired):
		// Right (a reset may leave it to be changed at next login).
	case errors.Is(err, ErrWrongPassword):
		return Verified{}, notApplied("the new password does not authenticate")
	default:
		return Verified{}, err
	}
	if !acct.SecureToken {
		return Verified{}, nil
	}
	on, err := NewFileVault(a.r).SecureTokenStatus(ctx, acct.Name)
	if err != nil {
		return Verified{}, err
	}
	if !on {
		return Verified{}, notApplied("the account lost its SecureToken")
	}
	return Verified{SecureToken: true}, nil
}

// ResetPassword sets acct's new password without the old one, authorised by
// a SecureToken administrator (adminUser, adminPW), which keeps the target's
// SecureToken and FileVault unlock in step (macos-tools.md §3.4):
//
//	sysadminctl -adminUser A -adminPassword - -resetPasswordFor U -newPassword -
//
// The passwords answer sysadminctl's prompts on a pseudo-terminal that is
// every stream of the child: "-" is documented as "request prompt", and where
// the prompt appears and whether sysadminctl reads stdin without a terminal
// are unconfirmed (§11.4). The prompts' texts are unknown too, so each is
// answered only when it can be told apart for certain (promptRules).
// sysadminctl exits 0 on failure, so its output is parsed and the result
// verified: the new password must authenticate and a token the account had
// must still be ENABLED. The login keychain is never re-keyed by a reset;
// move it aside and create a new one.
func (a *Accounts) ResetPassword(ctx context.Context, acct Account, newPW []byte, admin Account, adminPW []byte) (Verified, error) {
	if err := checkName(admin.Name); err != nil {
		return Verified{}, err
	}
	if err := checkName(acct.Name); err != nil {
		return Verified{}, err
	}
	if admin.Name == acct.Name {
		return Verified{}, fmt.Errorf("reset %s authorised by itself: use ChangePassword: %w", acct.Name, ErrNotAdmin)
	}
	if err := checkSecret("new password", newPW); err != nil {
		return Verified{}, err
	}
	if err := checkSecret("admin password", adminPW); err != nil {
		return Verified{}, err
	}
	res, err := a.r.Run(ctx, Cmd{
		Tool:     Sysadminctl,
		Args:     []string{"-adminUser", admin.Name, "-adminPassword", "-", "-resetPasswordFor", acct.Name, "-newPassword", "-"},
		Prompter: sysadminctlPrompter(admin, adminPW, acct, newPW, 2),
	})
	if err != nil {
		return Verified{}, err
	}
	if err := sysadminctlError("resetPasswordFor", res); err != nil {
		return Verified{}, err
	}
	return a.verifyApplied(ctx, Sysadminctl, "resetPasswordFor", res, acct, newPW)
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

// promptRules answers the password prompts of one sysadminctl run, whose
// texts macos-tools.md does not know (§11.4-5). A prompt is answered only
// when it can be told apart for certain: it names exactly one of the two
// accounts (by short name or full name, as a whole word), or it names
// neither and only one of the two secrets is still to be asked for.
// Otherwise it is never guessed: the run is killed at once and the error
// quotes the prompt. A name that is also a word any password prompt may hold
// ("admin", "password", ...) names its account only where a name stands:
// after "for" or "of", or before "'s".
type promptRules struct {
	rules []promptRule
}

type promptRule struct {
	what   string // "the password of the administrator admin"
	names  []*regexp.Regexp
	answer []byte
	left   int // how many more times it may be asked for
}

// promptWords are words a password prompt may hold whatever it asks for.
var promptWords = map[string]bool{
	"admin": true, "administrator": true, "password": true, "passphrase": true, "new": true, "old": true,
	"user": true, "enter": true, "for": true, "re-enter": true, "retype": true, "verify": true, "confirm": true,
	"the": true, "again": true, "please": true, "current": true, "account": true, "of": true,
}

const nameEdge = `($|[^A-Za-z0-9_.-])`

func nameRules(a Account) []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, n := range []string{a.Name, a.RealName} {
		if n == "" {
			continue
		}
		q := regexp.QuoteMeta(n)
		if promptWords[strings.ToLower(n)] {
			out = append(out, regexp.MustCompile(`(?i)(^|\s)(for|of)\s+`+q+nameEdge), regexp.MustCompile(`(?i)(^|[^A-Za-z0-9_.-])`+q+`'s\b`))
			continue
		}
		out = append(out, regexp.MustCompile(`(?i)(^|[^A-Za-z0-9_.-])`+q+nameEdge))
	}
	return out
}

// sysadminctlPrompter answers the administrator's password once and the
// user's secret up to userAsks times (2 for a new password and its
// confirmation).
func sysadminctlPrompter(admin Account, adminPW []byte, user Account, userPW []byte, userAsks int) *promptRules {
	return &promptRules{rules: []promptRule{
		{what: "the password of the administrator " + admin.Name, names: nameRules(admin), answer: adminPW, left: 1},
		{what: "the password of " + user.Name, names: nameRules(user), answer: userPW, left: userAsks},
	}}
}

// Answer implements Prompter.
func (p *promptRules) Answer(prompt string) ([]byte, error) {
	var named, left []*promptRule
	for i := range p.rules {
		r := &p.rules[i]
		for _, re := range r.names {
			if re.MatchString(prompt) {
				named = append(named, r)
				break
			}
		}
		if r.left > 0 {
			left = append(left, r)
		}
	}
	var pick *promptRule
	switch {
	case len(named) == 1:
		pick = named[0]
		if pick.left == 0 {
			return nil, &ToolError{Tool: Sysadminctl, Verb: "prompt", Message: fmt.Sprintf("asked again for %s (%q): the first answer was refused", pick.what, prompt), Err: ErrWrongPassword}
		}
	case len(named) == 0 && len(left) == 1:
		pick = left[0]
	default:
		return nil, &ToolError{Tool: Sysadminctl, Verb: "prompt",
			Message: fmt.Sprintf("cannot tell which password the prompt %q asks for, so it was not answered", prompt), Err: ErrUnknownPrompt}
	}
	pick.left--
	return pick.answer, nil
}
