package platform

import (
	"errors"
	"reflect"
	"testing"

	"github.com/lockstep-dev/lockstep/macsim"
)

// The stock Mac's policies (a macOS 26.2 capture) and an MDM Passcode
// payload's entry (facts-issue9 §1.3, §1.5).
const stockPolicies = `Getting global account policies
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>policyCategoryPasswordContent</key>
	<array>
		<dict>
			<key>policyContent</key>
			<string>policyAttributePassword matches '.{4,}+'</string>
			<key>policyContentDescription</key>
			<dict>
				<key>en</key>
				<string>Enter a password that is four characters or more.</string>
			</dict>
			<key>policyIdentifier</key>
			<string>com.apple.defaultpasswordpolicy.fde</string>
		</dict>
		<dict>
			<key>policyContent</key>
			<string>policyAttributePassword matches '(.*[^a-zA-Z0-9].*){1,}'</string>
			<key>policyContentDescription</key>
			<dict>
				<key>policyDefaultContentDescription</key>
				<string>Contain at least 1 special character.</string>
			</dict>
			<key>policyIdentifier</key>
			<string>ProfilePayload:3B01C197-EA69-4DAE-A872-5C6AB9816A2B:minComplexChars</string>
		</dict>
		<dict>
			<key>policyContent</key>
			<string>none policyAttributePasswordHashes in policyAttributePasswordHistory</string>
			<key>policyIdentifier</key>
			<string>Password History</string>
		</dict>
	</array>
</dict>
</plist>
`

func TestParseAccountPolicies(t *testing.T) {
	rules, err := parseAccountPolicies(stockPolicies)
	if err != nil {
		t.Fatal(err)
	}
	want := []PasswordRule{
		{ID: "com.apple.defaultpasswordpolicy.fde", Pattern: ".{4,}+", Descriptions: map[string]string{"en": "Enter a password that is four characters or more."}},
		{ID: "ProfilePayload:3B01C197-EA69-4DAE-A872-5C6AB9816A2B:minComplexChars", Pattern: "(.*[^a-zA-Z0-9].*){1,}",
			Descriptions: map[string]string{"policyDefaultContentDescription": "Contain at least 1 special character."}},
		{ID: "Password History"},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Fatalf("rules = %#v", rules)
	}
	empty, err := parseAccountPolicies("Getting global account policies\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict/>\n</plist>\n")
	if err != nil || len(empty) != 0 {
		t.Fatalf("no policies: %v %v", empty, err)
	}
	if _, err := parseAccountPolicies("Error: Operation is not supported by the directory node.\n"); err == nil {
		t.Fatal("an error text parsed as policies")
	}
}

// PasswordRules reads the global and the user's rules from pwpolicy.
func TestPasswordRules(t *testing.T) {
	t.Parallel()
	sp := testSpec()
	sp.PasswordPolicies = []macsim.ContentPolicy{{ID: "g1", Content: "policyAttributePassword matches '.{10,}'", Description: "Ten or more."}}
	sp.Users[1].PasswordPolicies = []macsim.ContentPolicy{{ID: "u1", Content: "policyAttributePassword matches '.*[0-9].*'", Description: "A digit."}}
	m := newMac(t, sp)
	rules, err := NewAccounts(m.r).PasswordRules(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 || rules[0].ID != "g1" || rules[0].Pattern != ".{10,}" || rules[1].ID != "u1" || rules[1].Descriptions["en"] != "A digit." {
		t.Fatalf("rules = %+v", rules)
	}
	if _, err := NewAccounts(m.r).PasswordRules(t.Context(), "nobody"); !errors.Is(err, ErrToolFailed) {
		t.Fatalf("rules of an unknown user: %v", err)
	}
}

// Accounts Lockstep must leave alone are told apart from the record.
func TestReadTellsUnmanagedAccounts(t *testing.T) {
	t.Parallel()
	sp := testSpec()
	sp.Users = append(sp.Users,
		macsim.UserSpec{Name: "mona", UID: 510, Password: "Mona-pass-1", MobileFrom: "/Active Directory/CORP/corp.example.com"},
		macsim.UserSpec{Name: "nate", UID: 511, Password: "Nate-pass-1", HomeDirectory: "<home_dir><url>smb://fs01.corp.example.com/Users</url><path>nate</path></home_dir>"},
		macsim.UserSpec{Name: "olga", UID: 512, Password: "Olga-pass-1", MustChangeLocal: true},
	)
	m := newMac(t, sp)
	acc := NewAccounts(m.r)
	mona, err := acc.Read(t.Context(), "mona")
	if err != nil || !mona.Mobile || mona.OriginalNodeName != "/Active Directory/CORP/corp.example.com" || mona.NetworkHome {
		t.Errorf("mobile account = %+v %v", mona, err)
	}
	nate, err := acc.Read(t.Context(), "nate")
	if err != nil || nate.Mobile || !nate.NetworkHome {
		t.Errorf("network home = %+v %v", nate, err)
	}
	alice := m.account(t, "alice")
	if alice.Mobile || alice.NetworkHome || alice.PasswordLastSet == 0 {
		t.Errorf("alice = %+v", alice)
	}
	// A right password that must be changed is told from a wrong one.
	if err := acc.VerifyPassword(t.Context(), "olga", []byte("Olga-pass-1")); !errors.Is(err, ErrPasswordExpired) {
		t.Errorf("must-change account, right password: %v", err)
	}
	if err := acc.VerifyPassword(t.Context(), "olga", []byte("Wrong-pass-1")); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("must-change account, wrong password: %v", err)
	}
}
