package platform

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// renderDsclRecord prints a record the way dscl -read does.
func renderDsclRecord(rec map[string][]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(rec)) {
		vals := rec[k]
		single := len(vals) > 0
		for _, v := range vals {
			if f := strings.Fields(v); len(f) != 1 || f[0] != v {
				single = false
			}
		}
		if single {
			fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(vals, " "))
			continue
		}
		fmt.Fprintf(&b, "%s:\n", k)
		for _, v := range vals {
			fmt.Fprintf(&b, " %s\n", v)
		}
	}
	return b.String()
}

func FuzzDsclRecord(f *testing.F) {
	f.Add("UniqueID: 501\nRealName:\n Owner User\nNo such key: X\n")
	f.Add("AuthenticationAuthority: ;ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2> ;SecureToken;\ndsAttrTypeNative:_writers_passwd: alice\n")
	f.Add("AuthenticationAuthority:\n ;LocalCachedUser;/Active Directory/CORP:alice:E9F6\n ;Kerberosv5;;alice@CORP;CORP;\nOriginalNodeName:\n /Active Directory/CORP\n")
	f.Add("x: \n:\n")    // found by fuzzing: empty value lists
	f.Add("0:\n \r\r\n") // found by fuzzing: carriage returns inside values
	f.Fuzz(func(t *testing.T, out string) {
		rec := parseDsclRecord(out)
		again := parseDsclRecord(renderDsclRecord(rec))
		if !reflect.DeepEqual(rec, again) {
			t.Fatalf("render/parse not stable:\n%q\n%q", rec, again)
		}
		for k, vs := range rec {
			if strings.Contains(k, " ") || strings.Contains(k, "\n") {
				t.Fatalf("key %q", k)
			}
			for _, v := range vs {
				if strings.Contains(v, "\n") {
					t.Fatalf("value %q", v)
				}
			}
		}
	})
}

func FuzzDsclStatus(f *testing.F) {
	f.Add("passwd: DS error: eDSAuthFailed\n", "<dscl_cmd> DS Error: -14090 (eDSAuthFailed)\n", 10)
	f.Add("Authentication for node /Local/Default failed. (-14167, eDSAuthAccountDisabled)\n", "", 87)
	f.Add("", "Permission denied. Please enter user's old password:<dscl_cmd> DS Error: -14090 (eDSAuthFailed)\n", 10)
	f.Add("", "", 56)
	f.Fuzz(func(t *testing.T, stdout, stderr string, exit int) {
		code, name, _ := parseDsclStatus(stdout, stderr, exit)
		if dsSentinel(code) == nil {
			t.Fatal("nil sentinel")
		}
		if m := dsErrLine.FindStringSubmatch(stderr); m != nil && name != m[2] {
			t.Fatalf("status line %q parsed as %s", m[0], name)
		}
	})
}

func FuzzSysadminctl(f *testing.F) {
	f.Add("Secure token is ENABLED for user Tuist Runner Operator")
	f.Add("### Error:-14090 File:/BuildRoot/Library/Caches/com.apple.xbs/Sources/Admin/Admin-674/DSAuthenticator.m Line:94")
	f.Add("Operation is not permitted without secure token unlock.")
	f.Add("Unknown user nosuchuser")
	f.Fuzz(func(t *testing.T, msg string) {
		stderr := "2026-09-23 10:10:38.619 sysadminctl[1053:11513] " + msg + "\n"
		lines := sysadminctlLines(stderr)
		if msg != "" && !strings.ContainsAny(msg, "\n\r") && (len(lines) != 1 || lines[0] != msg) {
			t.Fatalf("lines of %q = %q", msg, lines)
		}
		on, name, err := tokenStatus(lines)
		if err == nil && !strings.HasPrefix(msg, "Secure token is ") && !strings.Contains(msg, "\nSecure token is ") {
			t.Fatalf("token status %t %q from %q", on, name, msg)
		}
		if _, _, s, failed := sysadminctlFailure(lines); failed && s == nil {
			t.Fatal("failure without a sentinel")
		}
	})
}

func FuzzFdesetup(f *testing.F) {
	f.Add("fvuser,85F41F44-22B3-6CB7-85A1-BCC2EA2B887A\n")
	f.Add("FileVault is On.\nEncryption in progress: Percent completed = 42\n")
	f.Add("FileVault is Off.\n")
	f.Fuzz(func(t *testing.T, out string) {
		for _, u := range parseFdesetupList(out) {
			if u.Name == "" || u.UUID == "" || strings.ContainsAny(u.Name, ",\n") || strings.Contains(u.UUID, "\n") {
				t.Fatalf("user %+v", u)
			}
		}
		st, err := parseFdesetupStatus(out)
		first := strings.TrimSpace(strings.Split(strings.TrimSpace(out), "\n")[0])
		if err == nil && first != "FileVault is On." && first != "FileVault is Off." {
			t.Fatalf("status %+v from %q", st, out)
		}
		if err == nil && st.On != (first == "FileVault is On.") {
			t.Fatalf("On = %t from %q", st.On, out)
		}
	})
}

func FuzzCryptoUsers(f *testing.F) {
	f.Add("Cryptographic users for disk3s1s1 (2 found)\n|\n+-- 2DB09770-999B-43FB-99AF-2B878E4FE971\n|   Type: Local Open Directory User\n|   Volume Owner: Yes\n|\n+-- EBC6C064-0000-11AA-AA11-00306543ECAC\n    Type: Personal Recovery User\n    Volume Owner: Yes\n")
	f.Add("No cryptographic users for disk1s1\n")
	f.Fuzz(func(t *testing.T, out string) {
		users, err := parseCryptoUsers(out)
		if err != nil {
			if !errors.Is(err, ErrToolFailed) {
				t.Fatalf("error %v is not ErrToolFailed", err)
			}
			return
		}
		if m := cryptoHeader.FindStringSubmatch(firstLine(out)); m != nil && fmt.Sprint(len(users)) != strings.TrimLeft(m[2], "0") && len(users) != 0 {
			t.Fatalf("%d users, header %q", len(users), m[0])
		}
		for _, u := range users {
			if strings.Contains(u.UUID, "\n") || strings.Contains(u.Type, "\n") {
				t.Fatalf("user %+v", u)
			}
		}
	})
}

func FuzzPreboot(f *testing.F) {
	f.Add("Started APFS operation\nUpdatePreboot: Exiting Update Preboot operation with overall error=(ZeroMeansSuccess)=0\nFinished APFS operation\n")
	f.Add("UpdatePreboot: Exiting Update Preboot operation with overall error=(ZeroMeansSuccess)=22\n")
	f.Fuzz(func(t *testing.T, out string) {
		code, err := parsePreboot(out)
		if err == nil && code != 0 {
			t.Fatalf("success with code %d", code)
		}
		if err == nil && !strings.Contains(out, "overall error=(ZeroMeansSuccess)=") {
			t.Fatalf("success without the closing line: %q", out)
		}
	})
}

func FuzzSecurityError(f *testing.F) {
	f.Add("security: SecKeychainUnlock /Users/u/Library/Keychains/login.keychain-db: The user name or passphrase you entered is not correct.\n")
	f.Add("Old Password: New Password: Retype New Password: security: error changing password for \"kc\": The specified keychain could not be found.\n")
	f.Fuzz(func(t *testing.T, stderr string) {
		ctx, msg := parseSecurityError(stderr)
		if strings.Contains(stderr, "security: ") && (strings.Contains(msg, "\n") || strings.Contains(ctx, "\n")) {
			t.Fatalf("context %q message %q", ctx, msg)
		}
	})
}

func FuzzConsoleUser(f *testing.F) {
	f.Add("<dictionary> {\n  GID : 20\n  Name : alice\n  SessionInfo : <array> {\n    0 : <dictionary> {\n      kCGSSessionUserNameKey : bob\n    }\n  }\n  UID : 501\n}\n")
	f.Add("<dictionary> {\n  Name : loginwindow\n}\n")
	f.Add("  No such key\n")
	f.Fuzz(func(t *testing.T, out string) {
		name, uid, ok := parseConsoleUser(out)
		if ok && (name == "" || name == "loginwindow" || strings.Contains(name, "\n")) {
			t.Fatalf("console user %q %d", name, uid)
		}
		if !ok && (name != "" || uid != -1) {
			t.Fatalf("no user but %q %d", name, uid)
		}
	})
}
