package slapdtest

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestMain(m *testing.M) { Main(m) }

// The server serves verified LDAPS with ppolicy as the issue describes: a
// user binds with its password; an administrator's ldapmodify of
// userPassword with pwdReset: TRUE keeps the mark, one without it clears
// it; a too-short password is refused with
// "Password fails quality checking policy"; the old password stops
// binding.
func TestServer(t *testing.T) {
	s := Need(t)
	ou := s.NewOU(t)
	u := s.AddUser(t, ou, "u", "First-Pass-123!")
	if err := s.Bind(u.DN, u.Password); err != nil {
		t.Fatalf("bind with the password: %v", err)
	}
	s.LDAPModify(t, ResetLDIF(u.DN, "Second-Pass-456!", true))
	if got := s.Entry(t, u.DN, "pwdReset").GetAttributeValue("pwdReset"); got != "TRUE" {
		t.Fatalf("pwdReset after an administrator's temporary reset = %q", got)
	}
	s.SetPassword(t, u.DN, "Third-Pass-789!", false)
	if got := s.Entry(t, u.DN, "pwdReset").GetAttributeValue("pwdReset"); got != "" {
		t.Fatalf("pwdReset after a reset without it = %q", got)
	}
	if err := s.Bind(u.DN, "Third-Pass-789!"); err != nil {
		t.Fatalf("bind with the new password: %v", err)
	}
	if err := s.Bind(u.DN, "First-Pass-123!"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("bind with the previous password: %v", err)
	}
	out, err := s.LDAPModifyErr("dn: " + u.DN + "\nchangetype: modify\nreplace: userPassword\nuserPassword: short\n")
	if err == nil || !strings.Contains(out, "Password fails quality checking policy") {
		t.Fatalf("a short password: %v\n%s", err, out)
	}
}
