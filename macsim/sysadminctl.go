package macsim

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sysadminctl writes everything through NSLog to stderr and exits 0 even when
// it refused (macos-tools.md §3.2-3.3). Texts not captured from a real Mac
// (marked "assumed" below) keep the shape of the captured ones.
const dsAuthenticatorLine = "### Error:%d File:/BuildRoot/Library/Caches/com.apple.xbs/Sources/Admin/Admin-674/DSAuthenticator.m Line:94"

var sysadminctlUsage = []string{
	"Usage: sysadminctl",
	"-deleteUser <user name> [-secure || -keepHome] (interactive || -adminUser <administrator user name> -adminPassword <administrator password>)",
	"-newPassword <new password> -oldPassword <old password> [-passwordHint <password hint>]",
	"-resetPasswordFor <local user name> -newPassword <new password> [-passwordHint <password hint>] (interactive] || -adminUser <administrator user name> -adminPassword <administrator password>)",
	"-addUser <user name> [-fullName <full name>] [-UID <user ID>] [-GID <group ID>] [-shell <path to shell>] [-password <user password>] [-hint <user hint>] [-home <full path to home>] [-admin] [-roleAccount] [-picture <full path to user image>] (interactive] || -adminUser <administrator user name> -adminPassword <administrator password>)",
	"-secureTokenStatus <user name>",
	"-secureTokenOn <user name> -password <password> (interactive || -adminUser <administrator user name> -adminPassword <administrator password>)",
	"-secureTokenOff <user name> -password <password> (interactive || -adminUser <administrator user name> -adminPassword <administrator password>)",
	"",
	"Pass '-' instead of password in commands above to request prompt.",
	"'-adminPassword' used mostly for scripted operation. Use '-' or 'interactive' to get the authentication string interactively. This preferred for security reasons",
}

var sysadminctlValueFlags = map[string]bool{
	"-resetPasswordFor": true, "-newPassword": true, "-oldPassword": true, "-passwordHint": true,
	"-adminUser": true, "-adminPassword": true, "-secureTokenStatus": true, "-addUser": true,
	"-fullName": true, "-UID": true, "-GID": true, "-shell": true, "-password": true, "-hint": true,
	"-home": true, "-picture": true, "-secureTokenOn": true, "-secureTokenOff": true, "-deleteUser": true,
}

var sysadminctlBoolFlags = map[string]bool{"-admin": true, "-roleAccount": true, "-secure": true, "-keepHome": true, "interactive": true}

func (in *inv) usage() int {
	in.nslog("%s", sysadminctlUsage[0])
	for _, l := range sysadminctlUsage[1:] {
		_, _ = in.stderr.Write([]byte(l + "\n"))
	}
	return 0
}

func (in *inv) sysadminctl() int {
	flags := map[string]string{}
	for i := 0; i < len(in.args); i++ {
		a := in.args[i]
		switch {
		case sysadminctlValueFlags[a] && i+1 < len(in.args):
			flags[a] = in.args[i+1]
			i++
		case sysadminctlBoolFlags[a]:
			flags[a] = "1"
		default:
			return in.usage()
		}
	}
	switch {
	case flags["-secureTokenStatus"] != "":
		return in.saTokenStatus(flags["-secureTokenStatus"])
	case flags["-resetPasswordFor"] != "" && flags["-newPassword"] != "":
		return in.saReset(flags)
	case flags["-addUser"] != "":
		return in.saAddUser(flags)
	case flags["-secureTokenOn"] != "" && flags["-password"] != "":
		return in.saToken(flags, flags["-secureTokenOn"], true)
	case flags["-secureTokenOff"] != "" && flags["-password"] != "":
		return in.saToken(flags, flags["-secureTokenOff"], false)
	case flags["-deleteUser"] != "":
		return in.saDelete(flags)
	}
	return in.usage()
}

func (in *inv) saTokenStatus(name string) int {
	rec := in.st.user(name)
	if rec == nil {
		in.nslog("Unknown user %s", name)
		return 0
	}
	state := "DISABLED"
	if rec.hasToken() {
		state = "ENABLED"
	}
	in.nslog("Secure token is %s for user %s", state, rec.realName())
	return 0
}

// adminAuth authenticates -adminUser with pw (already read by saSecrets)
// and reports whether the credentials are a valid administrator's and
// whether that administrator holds a SecureToken. A failure is logged the
// way 10.13 logged a bad admin password (an "### Error:" line), and the
// operation goes on unauthenticated.
func (in *inv) adminAuth(flags map[string]string, pw []byte) (ok, token bool) {
	admin := flags["-adminUser"]
	if admin == "" || flags["-adminPassword"] == "" {
		return false, false
	}
	rec := in.st.user(admin)
	switch {
	case rec == nil || !rec.Shadow.Matches(pw) || !in.st.isAdmin(admin):
		if rec != nil && !rec.Shadow.Matches(pw) {
			in.authFailed(admin)
		}
		in.nslog(dsAuthenticatorLine, eDSAuthFailed.code)
		return false, false
	case rec.disabled():
		in.nslog(dsAuthenticatorLine, eDSAuthAccountDisabled.code)
		return false, false
	}
	in.authOK(admin)
	return true, rec.hasToken()
}

func (in *inv) saReset(flags map[string]string) int {
	name := flags["-resetPasswordFor"]
	adminPW, newPW, ok := in.saSecrets(flags, name, "-newPassword")
	if !ok {
		return 0
	}
	authed, adminToken := in.adminAuth(flags, adminPW)
	rec := in.st.user(name)
	if rec == nil {
		in.nslog("Unknown user %s", name)
		return 0
	}
	if rec.hasToken() {
		if !authed || !adminToken {
			in.nslog("Operation is not permitted without secure token unlock.")
			return 0
		}
	} else if !in.isRoot() && !authed {
		in.nslog(dsAuthenticatorLine, eDSPermissionError.code) // assumed
		return 0
	}
	if s, ok := in.policy(rec, newPW); !ok {
		in.nslog(dsAuthenticatorLine, s.code) // assumed
		return 0
	}
	h := newHash(newPW)
	rec.setPassword(h)
	if rec.hasToken() {
		// Authorised by a token holder: the target's token is re-wrapped, so
		// FileVault follows the new password.
		if c := in.st.crypto(rec.first("GeneratedUID")); c != nil {
			ph := newHash(newPW)
			c.Passphrase = &ph
			in.st.CryptoGen++
		}
	}
	in.dirty = true
	return 0
}

func (in *inv) saAddUser(flags map[string]string) int {
	name := flags["-addUser"]
	adminPW, pw, ok := in.saSecrets(flags, name, "-password")
	if !ok {
		return 0
	}
	authed, _ := in.adminAuth(flags, adminPW)
	if !in.isRoot() && !authed {
		in.nslog(dsAuthenticatorLine, eDSPermissionError.code) // assumed
		return 0
	}
	if !shortName.MatchString(name) {
		in.nslog("Invalid user name %s", name) // assumed
		return 0
	}
	if in.st.user(name) != nil {
		in.nslog(dsAuthenticatorLine, eDSRecordAlreadyExists.code) // assumed
		return 0
	}
	uid := 0
	if v := flags["-UID"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || in.st.userByUID(n) != nil {
			in.nslog("UID %s is invalid or already in use", v) // assumed
			return 0
		}
		uid = n
	} else {
		for uid = 501; in.st.userByUID(uid) != nil; uid++ {
		}
	}
	if flags["-roleAccount"] != "" && (!strings.HasPrefix(name, "_") || uid < 200 || uid > 400) {
		in.nslog("Role accounts require name starting with _ and UID in 200-400 range.")
		return 0
	}
	if len(pw) > 0 {
		if s, ok := in.policy(&Record{}, pw); !ok {
			in.nslog(dsAuthenticatorLine, s.code) // assumed
			return 0
		}
	}
	gid := 20
	if v := flags["-GID"]; v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			gid = n
		}
	}
	home := flags["-home"]
	if home == "" {
		home = filepath.Join(in.st.Root, "Users", name)
	}
	shell := flags["-shell"]
	if shell == "" {
		shell = "/bin/zsh"
	}
	rec := &Record{Attrs: map[string][]string{
		"RecordName": {name}, "UniqueID": {strconv.Itoa(uid)}, "PrimaryGroupID": {strconv.Itoa(gid)},
		"NFSHomeDirectory": {home}, "UserShell": {shell}, "GeneratedUID": {newUUID()}, "Password": {"********"},
		"AuthenticationAuthority": {";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2>", kerberosAuthority(name)},
	}}
	if v := flags["-fullName"]; v != "" {
		rec.Attrs["RealName"] = []string{v}
	}
	if len(pw) > 0 {
		h := newHash(pw)
		rec.setPassword(h)
	}
	in.st.Users[name] = rec
	if flags["-admin"] != "" {
		in.st.setAdmin(name, true)
	}
	in.dirty = true
	// The simulated sysadminctl never grants a SecureToken on -addUser; the
	// caller must use -secureTokenOn (and verify it).
	if strings.HasPrefix(home, in.st.Root+string(filepath.Separator)) {
		_ = os.MkdirAll(home, 0o755)
		_ = chownIfRoot(home, uid, gid)
	}
	return 0
}

func (in *inv) saToken(flags map[string]string, name string, on bool) int {
	adminPW, pw, ok := in.saSecrets(flags, name, "-password")
	if !ok {
		return 0
	}
	authed, adminToken := in.adminAuth(flags, adminPW)
	rec := in.st.user(name)
	if rec == nil {
		in.nslog("Unknown user %s", name)
		return 0
	}
	if !authed {
		return 0
	}
	if !rec.Shadow.Matches(pw) {
		in.authFailed(name)
		in.nslog(dsAuthenticatorLine, eDSAuthFailed.code)
		return 0
	}
	// "Done!" is printed even when the grant was silently rejected (an admin
	// without a token): only -secureTokenStatus tells the truth.
	if adminToken && rec.hasToken() != on {
		rec.setToken(on)
		guid := rec.first("GeneratedUID")
		if on {
			ph := newHash(pw)
			if c := in.st.crypto(guid); c != nil {
				c.Passphrase = &ph
				in.st.CryptoGen++
			} else {
				in.st.Crypto = append(in.st.Crypto, &CryptoUser{UUID: guid, Type: TypeODUser, VolumeOwner: in.st.isAdmin(name), Passphrase: &ph})
				in.st.CryptoGen++
			}
		} else {
			in.st.removeCrypto(guid)
		}
		in.dirty = true
	}
	in.nslog("Done!")
	return 0
}

func (in *inv) saDelete(flags map[string]string) int {
	name := flags["-deleteUser"]
	adminPW, _, ok := in.saSecrets(flags, name, "")
	if !ok {
		return 0
	}
	authed, adminToken := in.adminAuth(flags, adminPW)
	rec := in.st.user(name)
	if rec == nil {
		in.nslog("Unknown user %s", name)
		return 0
	}
	if !in.isRoot() && !authed {
		in.nslog(dsAuthenticatorLine, eDSPermissionError.code) // assumed
		return 0
	}
	if rec.hasToken() && !(authed && adminToken) && !in.isRoot() {
		in.nslog("Operation is not permitted without secure token unlock.")
		return 0
	}
	in.st.setAdmin(name, false)
	delete(in.st.Users, name)
	if in.st.crypto(rec.first("GeneratedUID")) != nil {
		in.st.removeCrypto(rec.first("GeneratedUID"))
	}
	if home := rec.first("NFSHomeDirectory"); flags["-keepHome"] == "" && strings.HasPrefix(home, in.st.Root+string(filepath.Separator)) {
		_ = os.RemoveAll(home)
	}
	in.dirty = true
	return 0
}
