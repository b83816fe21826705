package platform

import (
	"fmt"
	"howett.net/plist"
	"regexp"
	"strconv"
	"strings"
)

// parseDsclRecord parses `dscl -read` output: "Key: v1 v2" on one line, or
// "Key:" followed by one value per line indented by one space (how dscl
// prints values containing spaces). Attributes without a standard name are
// printed as "dsAttrTypeNative:Key" (IsHidden, accountPolicyData); they are
// stored under Key, as they are asked for. A property list value
// (accountPolicyData) has only its first line indented: every line up to
// "</plist>" belongs to it (facts-issue9 §0.1: public captures of
// `dscl . -read /Users/NAME` on macOS).
func parseDsclRecord(out string) map[string][]string {
	rec := map[string][]string{}
	key, inPlist := "", false
	for _, line := range strings.Split(out, "\n") {
		if inPlist {
			rec[key] = append(rec[key], strings.TrimPrefix(line, " "))
			inPlist = strings.TrimSpace(line) != "</plist>"
			continue
		}
		if line == "" {
			continue
		}
		if line[0] == ' ' {
			if key != "" {
				v := line[1:]
				rec[key] = append(rec[key], v)
				inPlist = len(rec[key]) == 1 && (strings.HasPrefix(v, "<?xml") || strings.HasPrefix(v, "<plist")) && !strings.Contains(v, "</plist>")
			}
			continue
		}
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.Contains(k, " ") {
			key = strings.TrimPrefix(k, nativePrefix)
			rec[key] = append(rec[key], strings.Fields(v)...)
			if rec[key] == nil {
				rec[key] = []string{}
			}
			continue
		}
		if strings.HasSuffix(line, ":") && !strings.Contains(line, " ") {
			key = strings.TrimPrefix(strings.TrimSuffix(line, ":"), nativePrefix)
			if _, ok := rec[key]; !ok {
				rec[key] = []string{}
			}
			continue
		}
		key = "" // not an attribute line (e.g. "No such key: X" on a merged stream)
	}
	return rec
}

// nativePrefix starts the name dscl prints for an attribute that has no
// standard (dsAttrTypeStandard) name.
const nativePrefix = "dsAttrTypeNative:"

// dsErrLine matches dscl's stderr status line "<dscl_cmd> DS Error: -14090 (eDSAuthFailed)".
var dsErrLine = regexp.MustCompile(`DS Error: (-?\d+) \((\w+)\)`)

// dsAuthLine matches -authonly's stdout "Authentication for node N failed. (-14090, eDSAuthFailed)".
var dsAuthLine = regexp.MustCompile(`failed\. \((-?\d+), (\w+)\)`)

// dsCmdLine matches the stdout line "passwd: DS error: eDSAuthFailed".
var dsCmdLine = regexp.MustCompile(`DS error: (\w+)`)

// parseDsclStatus finds the DS status dscl reported, from its status lines,
// falling back to the exit code (exit = -status & 0xff).
func parseDsclStatus(stdout, stderr string, exit int) (code int, name, message string) {
	if m := dsErrLine.FindStringSubmatch(stderr); m != nil {
		code, _ = strconv.Atoi(m[1])
		name = m[2]
	} else if m := dsAuthLine.FindStringSubmatch(stdout); m != nil {
		code, _ = strconv.Atoi(m[1])
		name = m[2]
	} else if m := dsCmdLine.FindStringSubmatch(stdout); m != nil {
		name = m[1]
		code = dsStatuses[name]
	} else if n, ok := dsByExit[exit]; ok {
		name, code = n, dsStatuses[n]
	}
	message = firstLine(stdout)
	if message == "" {
		message = lastLine([]byte(strings.TrimRight(stderr, "\n")))
	}
	return code, name, message
}

func firstLine(s string) string {
	s = strings.TrimLeft(s, "\n")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// nslogPrefix is sysadminctl's NSLog prefix "2026-09-23 10:10:38.619 sysadminctl[1053:11513] ".
var nslogPrefix = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} sysadminctl\[\d+:\d+\]:? `)

// sysadminctlLines returns sysadminctl's stderr messages without the NSLog
// prefix (lines without the prefix, such as usage continuations, as is).
func sysadminctlLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			continue
		}
		out = append(out, nslogPrefix.ReplaceAllString(l, ""))
	}
	return out
}

var (
	tokenStatusLine = regexp.MustCompile(`^Secure token is (ENABLED|DISABLED) for user (.*)$`)
	saErrorLine     = regexp.MustCompile(`^### Error:(-?\d+)`)
)

// tokenStatus interprets `sysadminctl -secureTokenStatus` output. The name
// printed is the account's RealName, not its short name.
func tokenStatus(lines []string) (enabled bool, realName string, err error) {
	for _, l := range lines {
		if m := tokenStatusLine.FindStringSubmatch(l); m != nil {
			return m[1] == "ENABLED", m[2], nil
		}
		if strings.HasPrefix(l, "Unknown user ") {
			return false, "", ErrNoSuchUser
		}
	}
	return false, "", fmt.Errorf("no secure token status line: %w", ErrToolFailed)
}

// sysadminctlFailure finds the failure a sysadminctl run reported (it exits
// 0 regardless): the status of an "### Error:" line, a secure-token refusal,
// an unknown user. ok is false when nothing failed visibly, which still
// needs verifying by observation.
func sysadminctlFailure(lines []string) (code int, message string, sentinel error, ok bool) {
	for _, l := range lines {
		switch {
		case saErrorLine.MatchString(l):
			code, _ = strconv.Atoi(saErrorLine.FindStringSubmatch(l)[1])
			return code, l, dsSentinel(code), true
		case strings.Contains(l, "not permitted without secure token unlock"):
			return 0, l, ErrNoSecureToken, true
		case strings.HasPrefix(l, "Unknown user "):
			return 0, l, ErrNoSuchUser, true
		case strings.HasPrefix(l, "Usage: sysadminctl"):
			return 0, l, ErrToolFailed, true
		case strings.Contains(l, "do not match"), strings.Contains(l, "requires name starting with"),
			strings.Contains(l, "already in use"), strings.HasPrefix(l, "Invalid user name"):
			return 0, l, ErrToolFailed, true
		}
	}
	return 0, "", nil, false
}

// FileVaultUser is one line of `fdesetup list`.
type FileVaultUser struct {
	Name string
	UUID string
}

// parseFdesetupList parses "shortname,UUID" lines.
func parseFdesetupList(out string) []FileVaultUser {
	var users []FileVaultUser
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		name, uuid, ok := strings.Cut(l, ",")
		if !ok || name == "" || uuid == "" {
			continue
		}
		users = append(users, FileVaultUser{Name: name, UUID: strings.TrimSpace(uuid)})
	}
	return users
}

// FileVaultStatus is `fdesetup status`.
type FileVaultStatus struct {
	On bool
	// Detail holds the lines after the first ("Encryption in progress: …",
	// "Deferred enablement appears to be active for user 'x'.").
	Detail []string
}

func parseFdesetupStatus(out string) (FileVaultStatus, error) {
	var st FileVaultStatus
	ls := strings.Split(strings.TrimSpace(out), "\n")
	switch strings.TrimSpace(ls[0]) {
	case "FileVault is On.":
		st.On = true
	case "FileVault is Off.":
	default:
		return st, fmt.Errorf("unrecognised fdesetup status %q: %w", ls[0], ErrToolFailed)
	}
	for _, l := range ls[1:] {
		if l = strings.TrimSpace(l); l != "" {
			st.Detail = append(st.Detail, l)
		}
	}
	return st, nil
}

// CryptoUser is one APFS crypto user (diskutil apfs listCryptoUsers).
type CryptoUser struct {
	UUID        string
	Type        string // "Local Open Directory User", "Personal Recovery User", …
	VolumeOwner bool
}

var cryptoHeader = regexp.MustCompile(`^Cryptographic users for (\S+) \((\d+) found\)$`)

// parseCryptoUsers parses the `diskutil apfs listCryptoUsers` tree.
func parseCryptoUsers(out string) ([]CryptoUser, error) {
	var users []CryptoUser
	want := -1
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, "\r ")
		if strings.HasPrefix(l, "No cryptographic users for ") {
			return nil, nil
		}
		if m := cryptoHeader.FindStringSubmatch(l); m != nil {
			want, _ = strconv.Atoi(m[2])
			continue
		}
		if uuid, ok := strings.CutPrefix(l, "+-- "); ok {
			users = append(users, CryptoUser{UUID: strings.TrimSpace(uuid)})
			continue
		}
		if len(users) == 0 {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimLeft(l, "| "), ": ")
		if !ok {
			continue
		}
		u := &users[len(users)-1]
		switch k {
		case "Type":
			u.Type = v
		case "Volume Owner":
			u.VolumeOwner = v == "Yes"
		}
	}
	if want < 0 {
		return nil, fmt.Errorf("no listCryptoUsers header: %w", ErrToolFailed)
	}
	if want != len(users) {
		return nil, fmt.Errorf("listCryptoUsers announced %d users, listed %d: %w", want, len(users), ErrToolFailed)
	}
	return users, nil
}

var prebootDone = regexp.MustCompile(`Exiting Update Preboot operation with overall error=\(ZeroMeansSuccess\)=(-?\d+)`)

// parsePreboot checks `diskutil apfs updatePreboot` output: success is the
// closing line with overall error 0 (the line is printed on success too, so
// its mere presence means nothing).
func parsePreboot(out string) (code int, err error) {
	m := prebootDone.FindAllStringSubmatch(out, -1)
	if m == nil {
		return 0, fmt.Errorf("updatePreboot printed no completion line: %w", ErrToolFailed)
	}
	code, _ = strconv.Atoi(m[len(m)-1][1])
	if code != 0 {
		return code, fmt.Errorf("updatePreboot overall error %d: %w", code, ErrToolFailed)
	}
	return 0, nil
}

// parseSecurityError splits security(1)'s failure line
// "security: <context>: <message>"; the message follows the last ": ".
// Prompts written to stderr (no newline after them) may precede it on the
// same line.
func parseSecurityError(stderr string) (context, message string) {
	for _, l := range strings.Split(stderr, "\n") {
		i := strings.Index(l, "security: ")
		if i < 0 {
			continue
		}
		rest := strings.TrimSpace(l[i+len("security: "):])
		if j := strings.LastIndex(rest, ": "); j >= 0 {
			return rest[:j], rest[j+2:]
		}
		return "", rest
	}
	return "", strings.TrimSpace(stderr)
}

// parseConsoleUser reads `show State:/Users/ConsoleUser` from scutil: the
// top-level "Name :" and "UID :" of the dictionary. ok is false when there is
// no console session or the name is "loginwindow" (nobody logged in).
func parseConsoleUser(out string) (name string, uid int, ok bool) {
	depth := 0
	uid = -1
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		if t == "}" {
			depth--
			continue
		}
		k, v, found := strings.Cut(t, " : ")
		if depth == 1 && found {
			switch k {
			case "Name":
				name = strings.TrimSpace(v)
			case "UID":
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					uid = n
				}
			}
		}
		if strings.HasSuffix(t, "{") {
			depth++
		}
	}
	if name == "" || name == "loginwindow" {
		return "", -1, false
	}
	return name, uid, true
}

// parseDsclList parses `dscl . -list /Users KEY`: "name<spaces>value…".
func parseDsclList(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			m[f[0]] = strings.Join(f[1:], " ")
		}
	}
	return m
}

// passwordLastSet reads passwordLastSetTime (seconds since 1970, a <real>)
// from accountPolicyData as dscl -read prints it: an XML property list, one
// line per value line. Zero when it is absent or unreadable.
func passwordLastSet(lines []string) float64 {
	if len(lines) == 0 {
		return 0
	}
	var d struct {
		PasswordLastSet float64 `plist:"passwordLastSetTime"`
	}
	if _, err := plist.Unmarshal([]byte(strings.Join(lines, "\n")), &d); err != nil {
		return 0
	}
	return d.PasswordLastSet
}
