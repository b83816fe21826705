package macsim

import (
	"fmt"
	"howett.net/plist"
	"sort"
	"strconv"
	"strings"
)

// dsStatus is an Open Directory status (DirServicesTypes.h).
type dsStatus struct {
	code int
	name string
}

var (
	eDSAuthFailed                     = dsStatus{-14090, "eDSAuthFailed"}
	eDSAuthUnknownUser                = dsStatus{-14098, "eDSAuthUnknownUser"}
	eDSPermissionError                = dsStatus{-14120, "eDSPermissionError"}
	eDSRecordAlreadyExists            = dsStatus{-14135, "eDSRecordAlreadyExists"}
	eDSRecordNotFound                 = dsStatus{-14136, "eDSRecordNotFound"}
	eDSAuthPasswordQualityCheckFailed = dsStatus{-14165, "eDSAuthPasswordQualityCheckFailed"}
	eDSAuthAccountDisabled            = dsStatus{-14167, "eDSAuthAccountDisabled"}
	eDSAuthNewPasswordRequired        = dsStatus{-14161, "eDSAuthNewPasswordRequired"}
)

// exit is dscl's exit status for a DS status: main() exits with -status,
// which the kernel truncates to 8 bits.
func (s dsStatus) exit() int { return int(uint8(-s.code)) }

// splitDscl splits `dscl [options] datasource command args...`.
func splitDscl(args []string) (opts []string, cmd string, datasource string, rest []string) {
	i := 0
	for i < len(args) {
		a := args[i]
		switch a {
		case "-u", "-P":
			opts = append(opts, args[i:min(i+2, len(args))]...)
			i += 2
			continue
		case "-p", "-raw", "-plist", "-url", "-q":
			opts = append(opts, a)
			i++
			continue
		}
		break
	}
	if i < len(args) {
		datasource = args[i]
		i++
	}
	if i < len(args) {
		cmd = args[i]
		rest = args[i+1:]
	}
	return opts, cmd, datasource, rest
}

func (in *inv) dscl() int {
	opts, cmd, ds, rest := splitDscl(in.args)
	if len(opts) > 0 {
		fmt.Fprintf(in.stderr, "macsim: dscl options %v are not simulated\n", opts)
		return 64
	}
	node := ""
	switch ds {
	case ".", "/Local/Default", "localhost":
		node = "/Local/Default"
	case "/Search":
		node = "/Search"
	case "":
		fmt.Fprintln(in.stderr, "macsim: dscl interactive mode is not simulated")
		return 64
	default:
		fmt.Fprintf(in.stderr, "Data source (%s) is not valid.\n", ds)
		return 69
	}
	if cmd == "" {
		fmt.Fprintln(in.stderr, "macsim: dscl interactive mode is not simulated")
		return 64
	}
	switch strings.TrimPrefix(cmd, "-") {
	case "read":
		return in.dsclRead(rest)
	case "list":
		return in.dsclList(rest)
	case "authonly":
		return in.dsclAuthonly(node, rest)
	case "passwd":
		return in.dsclPasswd(rest)
	case "create", "append", "delete":
		return in.dsclModify(strings.TrimPrefix(cmd, "-"), rest)
	}
	// dscl prints usage for an unknown command and exits 0.
	fmt.Fprintln(in.stdout, "usage: dscl [options] [<datasource> [<command>]]")
	return 0
}

// dsErr prints the stderr line every failing dscl command prints and returns
// the exit status.
func (in *inv) dsErr(s dsStatus) int {
	fmt.Fprintf(in.stderr, "<dscl_cmd> DS Error: %d (%s)\n", s.code, s.name)
	return s.exit()
}

// record resolves /Users/NAME or /Groups/NAME.
func (in *inv) record(path string) (*Record, string, string) {
	kind, name, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return nil, kind, name
	}
	switch kind {
	case "Users":
		return in.st.Users[name], kind, name
	case "Groups":
		return in.st.Groups[name], kind, name
	}
	return nil, kind, name
}

// formatAttr prints one attribute as dscl -read does: values on the key's
// line separated by spaces, or, when any value contains a space, each value
// on its own line indented by one space.
func formatAttr(key string, vals []string) string {
	multi := len(vals) == 0
	for _, v := range vals {
		if v == "" || strings.ContainsAny(v, " \t\n") {
			multi = true
		}
	}
	var b strings.Builder
	b.WriteString(printedName(key))
	b.WriteString(":")
	if multi {
		b.WriteString("\n")
		for _, v := range vals {
			b.WriteString(" " + v + "\n")
		}
		return b.String()
	}
	b.WriteString(" " + strings.Join(vals, " ") + "\n")
	return b.String()
}

func (in *inv) dsclRead(rest []string) int {
	if len(rest) == 0 {
		fmt.Fprintln(in.stderr, "Too few parameters for read operation")
		return 64
	}
	rec, _, _ := in.record(rest[0])
	if rec == nil {
		return in.dsErr(eDSRecordNotFound)
	}
	keys := rest[1:]
	if len(keys) == 0 {
		for k := range rec.Attrs {
			keys = append(keys, k)
		}
		if rec.Policy != nil {
			keys = append(keys, "accountPolicyData")
		}
		sort.Strings(keys)
	}
	for _, k := range keys {
		v, ok := rec.Attrs[k]
		if k == "accountPolicyData" && rec.Policy != nil {
			v, ok = policyLines(rec.Policy), true
		}
		if !ok {
			fmt.Fprintf(in.stderr, "No such key: %s\n", k)
			continue
		}
		if k == "accountPolicyData" {
			fmt.Fprint(in.stdout, formatPlistAttr(k, v))
			continue
		}
		fmt.Fprint(in.stdout, formatAttr(k, v))
	}
	return 0
}

// nativeAttrs are the attributes macsim keeps that have no standard
// (dsAttrTypeStandard) name: dscl -read prints them as
// "dsAttrTypeNative:NAME" (public captures of `dscl . -read /Users/NAME`
// and `dscl . read /Users/NAME IsHidden` → "dsAttrTypeNative:IsHidden: 1";
// facts-issue9 §0.1).
var nativeAttrs = map[string]bool{"IsHidden": true, "accountPolicyData": true, "ShadowHashData": true, "LinkedIdentity": true}

// printedName is the name dscl -read prints for attribute k.
func printedName(k string) string {
	if nativeAttrs[k] || strings.HasPrefix(k, "_writers_") {
		return "dsAttrTypeNative:" + k
	}
	return k
}

// formatPlistAttr prints a property-list attribute as dscl -read does: the
// name alone, the plist's first line indented by one space and the rest as
// they are (facts-issue9 §0.1).
func formatPlistAttr(key string, lines []string) string {
	var b strings.Builder
	b.WriteString(printedName(key) + ":\n")
	for i, l := range lines {
		if i == 0 {
			b.WriteString(" ")
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// policyLines is accountPolicyData as dscl prints it: an XML property list,
// one value line per line of it.
func policyLines(p *AccountPolicy) []string {
	b, err := plist.MarshalIndent(p, plist.XMLFormat, "\t")
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

func (in *inv) dsclList(rest []string) int {
	if len(rest) == 0 {
		fmt.Fprintln(in.stderr, "Too few parameters for list operation")
		return 64
	}
	var recs map[string]*Record
	switch strings.TrimSuffix(rest[0], "/") {
	case "/Users":
		recs = in.st.Users
	case "/Groups":
		recs = in.st.Groups
	default:
		return in.dsErr(eDSRecordNotFound)
	}
	names := make([]string, 0, len(recs))
	width := 0
	for n := range recs {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	for _, n := range names {
		if len(rest) < 2 {
			fmt.Fprintln(in.stdout, n)
			continue
		}
		v, ok := recs[n].Attrs[rest[1]]
		if !ok {
			continue
		}
		fmt.Fprintf(in.stdout, "%-*s %s\n", width+1, n, strings.Join(v, " "))
	}
	return 0
}

func (in *inv) dsclAuthonly(node string, rest []string) int {
	user := "root"
	if len(rest) > 0 {
		user = rest[0]
	}
	var pw []byte
	if len(rest) > 1 {
		pw = []byte(rest[1])
	} else {
		pw = in.getpass("Password:")
	}
	fail := func(s dsStatus) int {
		fmt.Fprintf(in.stdout, "Authentication for node %s failed. (%d, %s)\n", node, s.code, s.name)
		return in.dsErr(s)
	}
	rec := in.st.user(user)
	if rec == nil {
		return fail(eDSAuthUnknownUser)
	}
	if in.st.MaxFailedLogins > 0 && rec.Policy != nil && rec.Policy.FailedLoginCount >= in.st.MaxFailedLogins {
		// Locked out by the failed-login policy: even the right password
		// fails (assumed code, facts §11), and the attempt counts again.
		in.authFailed(user)
		return fail(eDSAuthAccountDisabled)
	}
	if !rec.Shadow.Matches(pw) {
		in.authFailed(user)
		return fail(eDSAuthFailed)
	}
	if rec.disabled() {
		return fail(eDSAuthAccountDisabled)
	}
	in.authOK(user)
	if rec.MustChange {
		// The password is right but must be changed (assumed text, facts §3).
		return fail(eDSAuthNewPasswordRequired)
	}
	return 0
}

// authFailed records a failed local login: a wrong password given for
// name. A Mac counts each toward its lockout policy (failedLoginCount in
// accountPolicyData) and logs it.
func (in *inv) authFailed(name string) {
	in.rec.AuthFailures = append(in.rec.AuthFailures, name)
	if rec := in.st.user(name); rec != nil && rec.authResult(false) {
		in.dirty = true
	}
}

// authOK records a successful authentication of name.
func (in *inv) authOK(name string) {
	if rec := in.st.user(name); rec != nil && rec.authResult(true) {
		in.dirty = true
	}
}

func (in *inv) dsclPasswd(rest []string) int {
	if len(rest) == 0 {
		fmt.Fprintln(in.stderr, "Too few parameters for passwd operation")
		return 64
	}
	if len(rest) > 3 {
		fmt.Fprintln(in.stderr, "Too many parameters for passwd operation")
		return 64
	}
	fail := func(s dsStatus) int {
		fmt.Fprintf(in.stdout, "passwd: DS error: %s\n", s.name)
		return in.dsErr(s)
	}
	vals := rest[1:]
	var newPW []byte
	if len(vals) == 0 {
		newPW = in.getpass("New Password: ")
	} else {
		newPW = []byte(vals[len(vals)-1])
	}
	rec, kind, _ := in.record(rest[0])
	if rec == nil || kind != "Users" {
		return fail(eDSRecordNotFound)
	}
	if len(vals) == 2 {
		return in.dsChange(rec, []byte(vals[0]), newPW, fail)
	}
	// One value: DSoUser setPassword: (a reset). Root may reset a user without
	// a SecureToken; everything else raises eDSPermissionError, on which dscl
	// asks for the old password and makes it a change.
	if in.isRoot() && !rec.hasToken() {
		if s, ok := in.policy(rec, newPW); !ok {
			return fail(s)
		}
		h := newHash(newPW)
		rec.setPassword(h)
		in.dirty = true
		// A reset never touches the crypto user: FileVault keeps the old
		// passphrase. The login keychain is not dscl's business at all.
		return 0
	}
	old := in.getpass("Permission denied. Please enter user's old password:")
	return in.dsChange(rec, old, newPW, fail)
}

// dsChange is DSoUser changePassword:toNewPassword: — authenticate with the
// old password, then replace it. The SecureToken stays and the crypto user's
// passphrase is re-wrapped to the new password when it was the old one.
func (in *inv) dsChange(rec *Record, old, newPW []byte, fail func(dsStatus) int) int {
	if !rec.Shadow.Matches(old) {
		in.authFailed(rec.first("RecordName"))
		return fail(eDSAuthFailed)
	}
	if rec.disabled() {
		return fail(eDSAuthAccountDisabled)
	}
	in.authOK(rec.first("RecordName"))
	if s, ok := in.policy(rec, newPW); !ok {
		return fail(s)
	}
	rec.MustChange = false
	h := newHash(newPW)
	rec.setPassword(h)
	if c := in.st.crypto(rec.first("GeneratedUID")); c != nil && c.Passphrase.Matches(old) {
		ph := newHash(newPW)
		c.Passphrase = &ph
		in.st.CryptoGen++
	}
	in.dirty = true
	return 0
}

func (in *inv) dsclModify(op string, rest []string) int {
	if len(rest) == 0 || (op == "append" && len(rest) < 2) {
		fmt.Fprintf(in.stderr, "Too few parameters for %s operation\n", op)
		return 64
	}
	label := op
	if len(rest) > 1 && op != "delete" {
		label = "attribute"
	}
	fail := func(s dsStatus) int {
		fmt.Fprintf(in.stdout, "<main> %s status: %s\n", label, s.name)
		return in.dsErr(s)
	}
	if !in.isRoot() {
		return fail(eDSPermissionError)
	}
	rec, kind, name := in.record(rest[0])
	if kind != "Users" && kind != "Groups" || name == "" {
		return fail(eDSRecordNotFound)
	}
	recs := in.st.Users
	if kind == "Groups" {
		recs = in.st.Groups
	}
	switch {
	case op == "create" && rec == nil:
		if !shortName.MatchString(name) {
			return fail(eDSPermissionError)
		}
		rec = &Record{Attrs: map[string][]string{"RecordName": {name}, "GeneratedUID": {newUUID()}}}
		recs[name] = rec
	case rec == nil:
		return fail(eDSRecordNotFound)
	case op == "create" && len(rest) == 1:
		return fail(eDSRecordAlreadyExists)
	}
	in.dirty = true
	if len(rest) == 1 {
		if op == "delete" {
			// Deleting the record leaves a token holder's crypto user behind
			// on the volume, as on macOS (sysadminctl -deleteUser removes it).
			delete(recs, name)
		}
		return 0
	}
	key, vals := rest[1], rest[2:]
	if key == "RecordName" {
		return fail(eDSPermissionError)
	}
	switch op {
	case "create":
		rec.Attrs[key] = append([]string(nil), vals...)
	case "append":
		rec.Attrs[key] = append(rec.Attrs[key], vals...)
	case "delete":
		if len(vals) == 0 {
			delete(rec.Attrs, key)
			break
		}
		var kept []string
		for _, v := range rec.Attrs[key] {
			if !containsStr(vals, v) {
				kept = append(kept, v)
			}
		}
		rec.Attrs[key] = kept
	}
	if kind == "Users" && key == "UniqueID" {
		if _, err := strconv.Atoi(rec.first("UniqueID")); err != nil {
			return fail(eDSPermissionError)
		}
	}
	return 0
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
