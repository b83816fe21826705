package platform

import (
	"errors"
	"testing"

	"github.com/lockstep-dev/lockstep/macsim"
)

func TestFileVault(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	fv := NewFileVault(m.r)
	ctx := t.Context()

	if on, err := fv.IsActive(ctx); err != nil || !on {
		t.Errorf("IsActive = %t %v, want true", on, err)
	}
	if st, err := fv.Status(ctx); err != nil || !st.On {
		t.Errorf("Status = %+v %v", st, err)
	}
	if err := m.sim.SetFileVault(false); err != nil {
		t.Fatal(err)
	}
	if on, err := fv.IsActive(ctx); err != nil || on {
		t.Errorf("IsActive after turning off = %t %v, want false", on, err)
	}
	if st, err := fv.Status(ctx); err != nil || st.On {
		t.Errorf("Status off = %+v %v", st, err)
	}

	users, err := fv.Users(ctx)
	if err != nil || len(users) != 3 {
		t.Fatalf("Users = %+v %v", users, err)
	}
	for name, want := range map[string]bool{"alice": true, "admin": true, "erin": true, "bob": false, "nobody": false} {
		if got, err := fv.IsFileVaultUser(ctx, name); err != nil || got != want {
			t.Errorf("IsFileVaultUser(%s) = %t %v, want %t", name, got, err, want)
		}
	}
	for name, want := range map[string]bool{"alice": true, "admin": true, "bob": false, "erin": false, "dave": false} {
		if got, err := fv.SecureTokenStatus(ctx, name); err != nil || got != want {
			t.Errorf("SecureTokenStatus(%s) = %t %v, want %t", name, got, err, want)
		}
	}
	if _, err := fv.SecureTokenStatus(ctx, "nobody"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("SecureTokenStatus(nobody) = %v, want ErrNoSuchUser", err)
	}

	cus, err := fv.CryptoUsers(ctx)
	if err != nil || len(cus) != 4 {
		t.Fatalf("CryptoUsers = %+v %v", cus, err)
	}
	if cus[3].UUID != macsim.RecoveryUserUUID || cus[3].Type != "Personal Recovery User" {
		t.Errorf("recovery user = %+v", cus[3])
	}
	alice := m.user(t, "alice")
	if ok, err := fv.IsCryptoUser(ctx, alice.GeneratedUID); err != nil || !ok {
		t.Errorf("IsCryptoUser(alice) = %t %v", ok, err)
	}
	if ok, err := fv.IsCryptoUser(ctx, m.user(t, "bob").GeneratedUID); err != nil || ok {
		t.Errorf("IsCryptoUser(bob) = %t %v", ok, err)
	}
}

func TestRefreshPreboot(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	fv := NewFileVault(m.r)
	ctx := t.Context()
	if _, err := NewAccounts(m.r).ChangePassword(ctx, m.account(t, "alice"), []byte(alicePW), []byte("Alice-new-pass-2")); err != nil {
		t.Fatal(err)
	}
	if m.snapshot(t).PrebootCurrent {
		t.Fatal("Preboot current right after a FileVault user's change")
	}
	if err := fv.RefreshPreboot(ctx); err != nil {
		t.Fatalf("RefreshPreboot: %v", err)
	}
	if !m.snapshot(t).PrebootCurrent {
		t.Error("Preboot not current after RefreshPreboot")
	}

	for _, f := range []macsim.Fault{
		// A failing run still prints the closing line, with a non-zero error.
		{Tool: "diskutil", Verb: "updatePreboot", Stdout: "Started APFS operation\nUpdatePreboot: Exiting Update Preboot operation with overall error=(ZeroMeansSuccess)=5\nFinished APFS operation", Count: 1},
		{Tool: "diskutil", Verb: "updatePreboot", Fail: "Error: -69808: Some information was unavailable during an internal lookup", Exit: 1, Count: 1},
		{Tool: "diskutil", Verb: "updatePreboot", Stdout: "Started APFS operation", Count: 1},
	} {
		if err := m.sim.AddFault(f); err != nil {
			t.Fatal(err)
		}
		err := fv.RefreshPreboot(ctx)
		var te *ToolError
		if !errors.Is(err, ErrToolFailed) || !errors.As(err, &te) || te.Tool != Diskutil {
			t.Errorf("RefreshPreboot with %+v: %v", f, err)
		}
	}
}

func TestFileVaultToolFailures(t *testing.T) {
	t.Parallel()
	m := newMac(t, testSpec())
	fv := NewFileVault(m.r)
	ctx := t.Context()
	for _, f := range []macsim.Fault{
		{Tool: "fdesetup", Verb: "isactive", Stdout: "maybe", Exit: 2},
		{Tool: "fdesetup", Verb: "status", Fail: "Error: This command requires root access.", Exit: 1},
		{Tool: "fdesetup", Verb: "list", Fail: "Error: This command requires root access.", Exit: 1},
		{Tool: "diskutil", Verb: "listCryptoUsers", Stdout: "Cryptographic users for disk3s1s1 (2 found)\n|\n+-- 2DB09770-999B-43FB-99AF-2B878E4FE971\n"},
		{Tool: "sysadminctl", Verb: "secureTokenStatus", Fail: "something else entirely"},
	} {
		if err := m.sim.ClearFaults(); err != nil {
			t.Fatal(err)
		}
		if err := m.sim.AddFault(f); err != nil {
			t.Fatal(err)
		}
		var err error
		switch f.Verb {
		case "isactive":
			_, err = fv.IsActive(ctx)
		case "status":
			_, err = fv.Status(ctx)
		case "list":
			_, err = fv.Users(ctx)
		case "listCryptoUsers":
			_, err = fv.CryptoUsers(ctx)
		case "secureTokenStatus":
			_, err = fv.SecureTokenStatus(ctx, "alice")
		}
		var te *ToolError
		if !errors.Is(err, ErrToolFailed) || !errors.As(err, &te) {
			t.Errorf("%s %s with a fault: %v", f.Tool, f.Verb, err)
		}
	}
}
