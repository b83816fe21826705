package sambatest

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestMain(m *testing.M) { Main(m) }

// The DC serves verified LDAPS, a user made by AddUser binds with its
// password, and after a reset the previous password no longer binds (Samba
// would accept it for an hour without "old password allowed period = 0").
func TestDC(t *testing.T) {
	d := Need(t)
	ou := d.NewOU(t)
	u := d.AddUser(t, ou, "u", "First-Pass-123!")
	if err := d.Bind(u.Name+"@lockstep.test", u.Password); err != nil {
		t.Fatalf("bind with the password: %v", err)
	}
	d.SetPassword(t, u.DN, "Second-Pass-456!", false)
	if err := d.Bind(u.Name+"@lockstep.test", "Second-Pass-456!"); err != nil {
		t.Fatalf("bind with the new password: %v", err)
	}
	if err := d.Bind(u.Name+"@lockstep.test", "First-Pass-123!"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("bind with the previous password: %v, want invalid credentials", err)
	}
	svc := d.ServiceAccount(t, ou, RightReset)
	if err := d.Bind(svc.DN, svc.Password); err != nil {
		t.Fatalf("service account bind: %v", err)
	}
}
