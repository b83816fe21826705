package platform

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// runToolDirect runs a simulated tool the way a shell would (no terminal:
// its own session), returning its exact output.
func runToolDirect(t *testing.T, m *mac, stdin string, tool string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(m.sim.ToolsDir(), tool), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %v: %v", tool, args, err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// nslogRE is sysadminctl's NSLog prefix.
const nslogRE = `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} sysadminctl\[\d+:\d+\] `

// fixture is one row of macos-tools.md section 10: the tool run against the
// simulator must print exactly stdout/stderr and exit with exit; then check
// feeds those same literal strings to the platform's parsers.
type fixture struct {
	name     string
	stdin    string
	tool     string
	args     []string
	stdout   string
	stderr   string // for sysadminctl: the message after the NSLog prefix
	exit     int
	nslog    bool
	setup    func(t *testing.T, m *mac)
	check    func(t *testing.T, stdout, stderr string, exit int)
	teardown func(t *testing.T, m *mac)
}

func wantDsclError(code int, name string, sentinel error) func(t *testing.T, stdout, stderr string, exit int) {
	return func(t *testing.T, stdout, stderr string, exit int) {
		t.Helper()
		c, n, _ := parseDsclStatus(stdout, stderr, exit)
		if c != code || n != name {
			t.Errorf("parseDsclStatus = %d %s, want %d %s", c, n, code, name)
		}
		if got := dsSentinel(c); !errors.Is(got, sentinel) {
			t.Errorf("dsSentinel(%d) = %v, want %v", c, got, sentinel)
		}
		if int(uint8(-c)) != exit {
			t.Errorf("exit %d is not -status&0xff of %d", exit, c)
		}
	}
}

func TestSection10Fixtures(t *testing.T) {
	m := newMac(t, testSpec())
	kc, err := m.sim.LoginKeychainPath("alice")
	if err != nil {
		t.Fatal(err)
	}
	snap := m.snapshot(t)
	guid := map[string]string{}
	for _, u := range snap.Users {
		guid[u.Name] = u.GeneratedUID
	}
	fixtures := []fixture{
		{name: "passwd change ok", tool: "dscl", args: []string{".", "-passwd", "/Users/bob", bobPW, "Bob-new-pass-2"},
			teardown: func(t *testing.T, m *mac) {
				m.wantPassword(t, "bob", "Bob-new-pass-2", true)
				runToolDirect(t, m, "", "dscl", ".", "-passwd", "/Users/bob", "Bob-new-pass-2", bobPW)
			}},
		{name: "passwd wrong old", tool: "dscl", args: []string{".", "-passwd", "/Users/bob", "Wrong-old-1", "Bob-new-pass-2"},
			stdout: "passwd: DS error: eDSAuthFailed\n", stderr: "<dscl_cmd> DS Error: -14090 (eDSAuthFailed)\n", exit: 10,
			check: wantDsclError(-14090, "eDSAuthFailed", ErrWrongPassword)},
		{name: "passwd policy", tool: "dscl", args: []string{".", "-passwd", "/Users/bob", bobPW, "short"},
			stdout: "passwd: DS error: eDSAuthPasswordQualityCheckFailed\n",
			stderr: "<dscl_cmd> DS Error: -14165 (eDSAuthPasswordQualityCheckFailed)\n", exit: 85,
			check: wantDsclError(-14165, "eDSAuthPasswordQualityCheckFailed", ErrPolicy)},
		{name: "root reset of a token user, stdin empty", tool: "dscl", args: []string{".", "-passwd", "/Users/alice", "Alice-new-pass"},
			stdout: "passwd: DS error: eDSAuthFailed\n",
			stderr: "Permission denied. Please enter user's old password:<dscl_cmd> DS Error: -14090 (eDSAuthFailed)\n", exit: 10,
			check: wantDsclError(-14090, "eDSAuthFailed", ErrWrongPassword)},
		{name: "authonly ok", tool: "dscl", args: []string{".", "-authonly", "alice", alicePW}},
		{name: "authonly bad password", tool: "dscl", args: []string{".", "-authonly", "alice", "Bad-pass-1"},
			stdout: "Authentication for node /Local/Default failed. (-14090, eDSAuthFailed)\n",
			stderr: "<dscl_cmd> DS Error: -14090 (eDSAuthFailed)\n", exit: 10,
			check: wantDsclError(-14090, "eDSAuthFailed", ErrWrongPassword)},
		{name: "authonly disabled", tool: "dscl", args: []string{".", "-authonly", "carol", carolPW},
			stdout: "Authentication for node /Local/Default failed. (-14167, eDSAuthAccountDisabled)\n",
			stderr: "<dscl_cmd> DS Error: -14167 (eDSAuthAccountDisabled)\n", exit: 87,
			check: wantDsclError(-14167, "eDSAuthAccountDisabled", ErrAccountDisabled)},
		{name: "read missing record", tool: "dscl", args: []string{".", "-read", "/Users/nobody", "X"},
			stderr: "<dscl_cmd> DS Error: -14136 (eDSRecordNotFound)\n", exit: 56,
			check: wantDsclError(-14136, "eDSRecordNotFound", ErrNoSuchUser)},
		{name: "read missing key", tool: "dscl", args: []string{".", "-read", "/Users/alice", "Missing"},
			stderr: "No such key: Missing\n",
			check: func(t *testing.T, stdout, stderr string, exit int) {
				if rec := parseDsclRecord(stdout + stderr); len(rec) != 0 {
					t.Errorf("parseDsclRecord of a missing key = %v, want nothing", rec)
				}
			}},
		{name: "secureTokenStatus enabled", tool: "sysadminctl", args: []string{"-secureTokenStatus", "alice"}, nslog: true,
			stderr: "Secure token is ENABLED for user Alice Example",
			check: func(t *testing.T, stdout, stderr string, exit int) {
				on, name, err := tokenStatus(sysadminctlLines(stderr))
				if err != nil || !on || name != "Alice Example" {
					t.Errorf("tokenStatus = %t %q %v, want ENABLED for the RealName", on, name, err)
				}
			}},
		{name: "secureTokenStatus disabled", tool: "sysadminctl", args: []string{"-secureTokenStatus", "bob"}, nslog: true,
			stderr: "Secure token is DISABLED for user Bob Plain",
			check: func(t *testing.T, stdout, stderr string, exit int) {
				on, name, err := tokenStatus(sysadminctlLines(stderr))
				if err != nil || on || name != "Bob Plain" {
					t.Errorf("tokenStatus = %t %q %v, want DISABLED", on, name, err)
				}
			}},
		{name: "secureTokenStatus unknown", tool: "sysadminctl", args: []string{"-secureTokenStatus", "nosuchuser"}, nslog: true,
			stderr: "Unknown user nosuchuser",
			check: func(t *testing.T, stdout, stderr string, exit int) {
				if _, _, err := tokenStatus(sysadminctlLines(stderr)); !errors.Is(err, ErrNoSuchUser) {
					t.Errorf("tokenStatus err = %v, want ErrNoSuchUser", err)
				}
			}},
		{name: "resetPasswordFor token user without admin", tool: "sysadminctl", args: []string{"-resetPasswordFor", "alice", "-newPassword", "Alice-new-pass"},
			nslog: true, stderr: "Operation is not permitted without secure token unlock.",
			check: func(t *testing.T, stdout, stderr string, exit int) {
				if _, _, s, ok := sysadminctlFailure(sysadminctlLines(stderr)); !ok || !errors.Is(s, ErrNoSecureToken) {
					t.Errorf("sysadminctlFailure = %v %t, want ErrNoSecureToken", s, ok)
				}
			},
			teardown: func(t *testing.T, m *mac) { m.wantPassword(t, "alice", alicePW, true) }},
		{name: "fdesetup isactive on", tool: "fdesetup", args: []string{"isactive"}, stdout: "true\n"},
		{name: "fdesetup isactive off", tool: "fdesetup", args: []string{"isactive"}, stdout: "false\n", exit: 1,
			setup: func(t *testing.T, m *mac) {
				if err := m.sim.SetFileVault(false); err != nil {
					t.Fatal(err)
				}
			},
			teardown: func(t *testing.T, m *mac) {
				if err := m.sim.SetFileVault(true); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "fdesetup list", tool: "fdesetup", args: []string{"list"},
			stdout: "admin," + guid["admin"] + "\nalice," + guid["alice"] + "\nerin," + guid["erin"] + "\n",
			check: func(t *testing.T, stdout, stderr string, exit int) {
				us := parseFdesetupList(stdout)
				if len(us) != 3 || us[1] != (FileVaultUser{"alice", guid["alice"]}) {
					t.Errorf("parseFdesetupList = %+v", us)
				}
			}},
		{name: "unlock-keychain bad password", tool: "security", args: []string{"unlock-keychain", "-p", "BAD", kc},
			stderr: "security: SecKeychainUnlock " + kc + ": The user name or passphrase you entered is not correct.\n", exit: 51,
			check: func(t *testing.T, stdout, stderr string, exit int) {
				ctx, msg := parseSecurityError(stderr)
				if ctx != "SecKeychainUnlock "+kc || msg != "The user name or passphrase you entered is not correct." {
					t.Errorf("parseSecurityError = %q, %q", ctx, msg)
				}
				if _, s := securitySentinel(exit); !errors.Is(s, ErrKeychainWrongPassword) {
					t.Errorf("securitySentinel(%d) = %v", exit, s)
				}
			}},
		{name: "set-keychain-password bad old", tool: "security", args: []string{"set-keychain-password", "-o", "BAD", "-p", "Newkc-pass-1", kc},
			stderr: `security: error changing password for "` + kc + `": The user name or passphrase you entered is not correct.` + "\n", exit: 51,
			check: func(t *testing.T, stdout, stderr string, exit int) {
				ctx, msg := parseSecurityError(stderr)
				if ctx != `error changing password for "`+kc+`"` || msg != "The user name or passphrase you entered is not correct." {
					t.Errorf("parseSecurityError = %q, %q", ctx, msg)
				}
			}},
		{name: "show-keychain-info", tool: "security", args: []string{"show-keychain-info", kc},
			stderr: `Keychain "` + kc + `" lock-on-sleep timeout=300s` + "\n"},
	}
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			if f.setup != nil {
				f.setup(t, m)
			}
			stdout, stderr, exit := runToolDirect(t, m, f.stdin, f.tool, f.args...)
			if stdout != f.stdout {
				t.Errorf("stdout = %q, want %q", stdout, f.stdout)
			}
			if f.nslog {
				if !regexp.MustCompile(`^` + nslogRE + regexp.QuoteMeta(f.stderr) + "\n$").MatchString(stderr) {
					t.Errorf("stderr = %q, want NSLog prefix + %q", stderr, f.stderr)
				}
			} else if stderr != f.stderr {
				t.Errorf("stderr = %q, want %q", stderr, f.stderr)
			}
			if exit != f.exit {
				t.Errorf("exit = %d, want %d", exit, f.exit)
			}
			if f.check != nil {
				f.check(t, f.stdout, stderr, f.exit)
			}
			if f.teardown != nil {
				f.teardown(t, m)
			}
		})
	}
}

// The parsers on the literal captures quoted in macos-tools.md.
func TestParsersOnReferenceCaptures(t *testing.T) {
	t.Run("dscl read", func(t *testing.T) {
		out := "UniqueID: 501\nGeneratedUID: 2DB09770-999B-43FB-99AF-2B878E4FE971\nPrimaryGroupID: 350\nRealName:\n Owner User\n" +
			"AuthenticationAuthority: ;ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2> ;Kerberosv5;;unlock@LKDC:SHA1.20BABA05A6B1A86A8C57581A8487596640A3E37B;LKDC:SHA1.20CEBE04A5B1D92D8C58189D8487593350D3A40A; ;SecureToken; DisabledUser\n"
		rec := parseDsclRecord(out)
		if got := rec["RealName"]; len(got) != 1 || got[0] != "Owner User" {
			t.Errorf("RealName = %q", got)
		}
		aa := rec["AuthenticationAuthority"]
		if len(aa) != 4 || aa[2] != ";SecureToken;" || aa[3] != "DisabledUser" {
			t.Errorf("AuthenticationAuthority = %q", aa)
		}
		// A full read as macOS prints it: native attributes named
		// dsAttrTypeNative:…, and accountPolicyData's plist with only its
		// first line indented (public captures, facts-issue9 §0.1).
		native := "dsAttrTypeNative:accountPolicyData:\n <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" +
			"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n" +
			"<plist version=\"1.0\">\n<dict>\n\t<key>creationTime</key>\n\t<real>1540611063.535651</real>\n" +
			"\t<key>failedLoginCount</key>\n\t<integer>0</integer>\n\t<key>failedLoginTimestamp</key>\n\t<integer>0</integer>\n" +
			"\t<key>passwordLastSetTime</key>\n\t<real>1540611064.6205959</real>\n</dict>\n</plist>\n" +
			"dsAttrTypeNative:IsHidden: 1\nNFSHomeDirectory: /Users/user1\nRealName:\n User One\n"
		rec = parseDsclRecord(native)
		if got := passwordLastSet(rec["accountPolicyData"]); got != 1540611064.6205959 {
			t.Errorf("passwordLastSetTime = %v from %q", got, rec["accountPolicyData"])
		}
		if rec["IsHidden"] == nil || rec["IsHidden"][0] != "1" || rec["NFSHomeDirectory"][0] != "/Users/user1" || rec["RealName"][0] != "User One" {
			t.Errorf("record after accountPolicyData = %q", rec)
		}
		mobile := "AuthenticationAuthority:\n ;LocalCachedUser;/Active Directory/CORP/corp.example.com:alice:E9F6E0ED-138E-40C9-B9E7-A7F3F661DB14\n ;Kerberosv5;;alice@CORP.EXAMPLE.COM;CORP.EXAMPLE.COM;\n ;ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>\nOriginalNodeName:\n /Active Directory/CORP/corp.example.com\n"
		rec = parseDsclRecord(mobile)
		if len(rec["AuthenticationAuthority"]) != 3 || rec["OriginalNodeName"][0] != "/Active Directory/CORP/corp.example.com" {
			t.Errorf("mobile record = %q", rec)
		}
	})
	t.Run("sysadminctl", func(t *testing.T) {
		for _, c := range []struct {
			in   string
			on   bool
			name string
		}{
			{"2026-09-23 10:10:38.619 sysadminctl[1053:11513] Secure token is ENABLED for user Tuist Runner Operator\n", true, "Tuist Runner Operator"},
			{"2026-09-23 09:41:40.102 sysadminctl[1290:12512] Secure token is DISABLED for user Tuist Runner Operator\n", false, "Tuist Runner Operator"},
			{"2017-12-20 15:12:22.163 sysadminctl[505:3977] ### Error:-14090 File:/BuildRoot/Library/Caches/com.apple.xbs/Sources/Admin/Admin-674/DSAuthenticator.m Line:94\n2017-12-20 15:12:22.214 sysadminctl[505:3977] Secure token is ENABLED for user otheruser\n", true, "otheruser"},
		} {
			on, name, err := tokenStatus(sysadminctlLines(c.in))
			if err != nil || on != c.on || name != c.name {
				t.Errorf("tokenStatus(%q) = %t %q %v", c.in, on, name, err)
			}
		}
		if _, _, err := tokenStatus(sysadminctlLines("2026-09-23 10:10:38.638 sysadminctl[1056:11522] Unknown user nosuchuser\n")); !errors.Is(err, ErrNoSuchUser) {
			t.Errorf("unknown user: %v", err)
		}
		code, _, s, ok := sysadminctlFailure(sysadminctlLines("2017-12-20 15:12:22.163 sysadminctl[505:3977] ### Error:-14090 File:/BuildRoot/Library/Caches/com.apple.xbs/Sources/Admin/Admin-674/DSAuthenticator.m Line:94\n"))
		if !ok || code != -14090 || !errors.Is(s, ErrWrongPassword) {
			t.Errorf("### Error line: %d %v %t", code, s, ok)
		}
	})
	t.Run("fdesetup", func(t *testing.T) {
		us := parseFdesetupList("fvuser,85F41F44-22B3-6CB7-85A1-BCC2EA2B887A\n")
		if len(us) != 1 || us[0] != (FileVaultUser{"fvuser", "85F41F44-22B3-6CB7-85A1-BCC2EA2B887A"}) {
			t.Errorf("list = %+v", us)
		}
		for in, want := range map[string]FileVaultStatus{
			"FileVault is On.\n":  {On: true},
			"FileVault is Off.\n": {},
			"FileVault is Off.\nDeferred enablement appears to be active for user 'alex'.\n": {Detail: []string{"Deferred enablement appears to be active for user 'alex'."}},
			"FileVault is On.\nEncryption in progress: Percent completed = 42\n":             {On: true, Detail: []string{"Encryption in progress: Percent completed = 42"}},
		} {
			got, err := parseFdesetupStatus(in)
			if err != nil || got.On != want.On || strings.Join(got.Detail, "|") != strings.Join(want.Detail, "|") {
				t.Errorf("status(%q) = %+v %v", in, got, err)
			}
		}
	})
	t.Run("diskutil", func(t *testing.T) {
		tree := "Cryptographic users for disk3s1s1 (2 found)\n|\n+-- 2DB09770-999B-43FB-99AF-2B878E4FE971\n|   Type: Local Open Directory User\n|   Volume Owner: Yes\n|\n+-- EBC6C064-0000-11AA-AA11-00306543ECAC\n    Type: Personal Recovery User\n    Volume Owner: Yes\n"
		us, err := parseCryptoUsers(tree)
		want := []CryptoUser{{"2DB09770-999B-43FB-99AF-2B878E4FE971", "Local Open Directory User", true}, {"EBC6C064-0000-11AA-AA11-00306543ECAC", "Personal Recovery User", true}}
		if err != nil || len(us) != 2 || us[0] != want[0] || us[1] != want[1] {
			t.Errorf("parseCryptoUsers = %+v %v", us, err)
		}
		if us, err := parseCryptoUsers("No cryptographic users for disk1s1\n"); err != nil || len(us) != 0 {
			t.Errorf("empty = %+v %v", us, err)
		}
		ok := "UpdatePreboot: Exiting Update Preboot operation with overall error=(ZeroMeansSuccess)=0\nFinished APFS operation\n"
		if _, err := parsePreboot(ok); err != nil {
			t.Errorf("preboot success: %v", err)
		}
		if code, err := parsePreboot(strings.Replace(ok, "=0\n", "=22\n", 1)); err == nil || code != 22 {
			t.Errorf("preboot error: %d %v", code, err)
		}
	})
	t.Run("security", func(t *testing.T) {
		for in, msg := range map[string]string{
			"security: SecKeychainUnlock /Users/evanhoffman/Library/Keychains/login.keychain-db: The user name or passphrase you entered is not correct.\n":     "The user name or passphrase you entered is not correct.",
			"security: SecKeychainUnlock /Users/Ezra/Library/Keychains/login.keychain-db: User interaction is not allowed.\n":                                   "User interaction is not allowed.",
			"security: SecKeychainUnlock /Users/mark/Library/Keychains/fastlane_tmp_keychain.keychain-db: The specified keychain could not be found.\n":         "The specified keychain could not be found.",
			"security: error changing password for \"/Users/u/Library/Keychains/login.keychain-db\": The user name or passphrase you entered is not correct.\n": "The user name or passphrase you entered is not correct.",
		} {
			if _, got := parseSecurityError(in); got != msg {
				t.Errorf("parseSecurityError(%q) = %q", in, got)
			}
		}
		for exit, want := range map[int]error{51: ErrKeychainWrongPassword, 50: ErrKeychainMissing, 48: ErrKeychainExists, 36: ErrToolFailed} {
			if _, got := securitySentinel(exit); !errors.Is(got, want) {
				t.Errorf("securitySentinel(%d) = %v, want %v", exit, got, want)
			}
		}
	})
	t.Run("scutil", func(t *testing.T) {
		out := "<dictionary> {\n  GID : 20\n  Name : alice\n  SessionInfo : <array> {\n    0 : <dictionary> {\n      kCGSSessionUserIDKey : 501\n      kCGSSessionUserNameKey : alice\n    }\n  }\n  UID : 501\n}\n"
		if name, uid, ok := parseConsoleUser(out); !ok || name != "alice" || uid != 501 {
			t.Errorf("console = %q %d %t", name, uid, ok)
		}
		if _, _, ok := parseConsoleUser(strings.ReplaceAll(out, "alice", "loginwindow")); ok {
			t.Error("loginwindow counted as a user")
		}
		if _, _, ok := parseConsoleUser("  No such key\n"); ok {
			t.Error("no key counted as a user")
		}
	})
}
