package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestEmailAndEnrolment: the new user fields round-trip and addresses are
// found whatever their case.
func TestEmailAndEnrolment(t *testing.T) {
	each(t, func(t *testing.T, s, _ Store) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Microsecond)
		until := now.Add(7 * 24 * time.Hour)
		err := s.Update(ctx, func(tx Tx) error {
			for _, u := range []User{
				{Name: "alice", Email: " Alice@Example.COM ", MFAEnrollUntil: until, TOTPPending: []byte{9}, TOTPPendingAt: now},
				{Name: "bob", Email: "bob@example.com"},
				{Name: "carol"},
			} {
				u.PasswordHash, u.PasswordVersion, u.PasswordChangedAt, u.CreatedAt = "h", 1, now, now
				if err := tx.CreateUser(ctx, u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.View(ctx, func(tx Tx) error {
			u, err := tx.User(ctx, "alice")
			if err != nil {
				return err
			}
			if u.Email != "alice@example.com" || !u.MFAEnrollUntil.Equal(until) || string(u.TOTPPending) != "\x09" || !u.TOTPPendingAt.Equal(now) {
				return fmt.Errorf("alice round trip: %+v", u)
			}
			c, err := tx.User(ctx, "carol")
			if err != nil {
				return err
			}
			if c.Email != "" || !c.MFAEnrollUntil.IsZero() || c.TOTPPending != nil || !c.TOTPPendingAt.IsZero() {
				return fmt.Errorf("carol has what she was not given: %+v", c)
			}
			for addr, want := range map[string]string{"ALICE@example.com": "[alice]", "bob@example.com": "[bob]", "": "[]", "x@y": "[]"} {
				us, err := tx.UsersByEmail(ctx, addr)
				if err != nil {
					return err
				}
				var names []string
				for _, u := range us {
					names = append(names, u.Name)
				}
				if fmt.Sprint(names) != want {
					return fmt.Errorf("UsersByEmail(%q) = %v, want %s", addr, names, want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Clearing the fields clears them.
		err = s.Update(ctx, func(tx Tx) error {
			u, err := tx.User(ctx, "alice")
			if err != nil {
				return err
			}
			u.Email, u.MFAEnrollUntil, u.TOTPPending, u.TOTPPendingAt = "", time.Time{}, nil, time.Time{}
			return tx.UpdateUser(ctx, u)
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.View(ctx, func(tx Tx) error {
			u, err := tx.User(ctx, "alice")
			if err != nil {
				return err
			}
			if u.Email != "" || !u.MFAEnrollUntil.IsZero() || u.TOTPPending != nil || !u.TOTPPendingAt.IsZero() {
				return fmt.Errorf("alice after clearing: %+v", u)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestResetTokens: a token is used once, expiring ends only unused ones,
// pruning deletes what expired, and deleting the user deletes its tokens.
func TestResetTokens(t *testing.T) {
	each(t, func(t *testing.T, s, b Store) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Microsecond)
		err := s.Update(ctx, func(tx Tx) error {
			if err := tx.CreateUser(ctx, User{Name: "alice", PasswordHash: "h", PasswordVersion: 1, PasswordChangedAt: now, CreatedAt: now}); err != nil {
				return err
			}
			for i, h := range []string{"t1", "t2", "t3"} {
				if err := tx.CreateResetToken(ctx, ResetToken{Hash: []byte(h), User: "alice", CreatedAt: now,
					ExpiresAt: now.Add(time.Duration(i+1) * time.Hour)}); err != nil {
					return err
				}
			}
			if err := tx.CreateResetToken(ctx, ResetToken{Hash: []byte("x"), User: "nobody", CreatedAt: now, ExpiresAt: now}); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("token for an unknown user: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Two redemptions, one per handle (replicas): one wins.
		use := func(st Store) error {
			return st.Update(ctx, func(tx Tx) error { return tx.UseResetToken(ctx, []byte("t1"), now) })
		}
		if err := use(s); err != nil {
			t.Fatal(err)
		}
		if err := use(b); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second use: %v, want ErrNotFound", err)
		}
		var n int
		err = s.Update(ctx, func(tx Tx) error {
			var err error
			n, err = tx.ExpireResetTokens(ctx, "alice", now.Add(time.Minute))
			return err
		})
		if err != nil || n != 2 {
			t.Fatalf("expired %d (%v), want the 2 unused", n, err)
		}
		err = s.View(ctx, func(tx Tx) error {
			r, err := tx.ResetToken(ctx, []byte("t1"))
			if err != nil {
				return err
			}
			if r.User != "alice" || !r.UsedAt.Equal(now) || !r.ExpiresAt.Equal(now.Add(time.Hour)) {
				return fmt.Errorf("used token: %+v", r)
			}
			r, err = tx.ResetToken(ctx, []byte("t3"))
			if err != nil {
				return err
			}
			if !r.UsedAt.IsZero() || !r.ExpiresAt.Equal(now.Add(time.Minute)) {
				return fmt.Errorf("expired token: %+v", r)
			}
			if _, err := tx.ResetToken(ctx, []byte("nope")); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("unknown token: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Update(ctx, func(tx Tx) error {
			var err error
			n, err = tx.PruneResetTokens(ctx, now.Add(30*time.Minute))
			return err
		})
		if err != nil || n != 2 {
			t.Fatalf("pruned %d (%v), want t2 and t3", n, err)
		}
		if err := s.Update(ctx, func(tx Tx) error { return tx.DeleteUser(ctx, "alice") }); err != nil {
			t.Fatal(err)
		}
		err = s.View(ctx, func(tx Tx) error {
			if _, err := tx.ResetToken(ctx, []byte("t1")); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("token after its user was deleted: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestPlaceStates: a report replaces the earlier one place by place, needs
// a binding, and goes with it.
func TestPlaceStates(t *testing.T) {
	each(t, func(t *testing.T, s, _ Store) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Microsecond)
		err := s.Update(ctx, func(tx Tx) error {
			if err := tx.CreateUser(ctx, User{Name: "alice", PasswordHash: "h", PasswordVersion: 1, PasswordChangedAt: now, CreatedAt: now}); err != nil {
				return err
			}
			for _, d := range []string{"d1", "d2"} {
				if err := tx.CreateDevice(ctx, Device{ID: d, Hostname: d, PublicKey: make([]byte, 32), CreatedAt: now}); err != nil {
					return err
				}
				if err := tx.Bind(ctx, Binding{DeviceID: d, User: "alice", LocalName: "alice", BoundAt: now}); err != nil {
					return err
				}
			}
			if err := tx.PutPlaceStates(ctx, "d1", "alice", []PlaceState{
				{Place: "directory", State: "ok", At: now, ReportedAt: now},
				{Place: "keychain", State: "behind", At: now, ReportedAt: now},
			}); err != nil {
				return err
			}
			if err := tx.PutPlaceStates(ctx, "d2", "alice", []PlaceState{{Place: "local", State: "ok", At: now, ReportedAt: now}}); err != nil {
				return err
			}
			later := now.Add(time.Minute)
			if err := tx.PutPlaceStates(ctx, "d1", "alice", []PlaceState{{Place: "keychain", State: "ok", At: later, ReportedAt: later}}); err != nil {
				return err
			}
			if err := tx.PutPlaceStates(ctx, "d1", "bob", []PlaceState{{Place: "local", State: "ok", At: now, ReportedAt: now}}); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("report without a binding: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		show := func() string {
			var got string
			err := s.View(ctx, func(tx Tx) error {
				ps, err := tx.PlaceStates(ctx, "alice")
				for _, p := range ps {
					got += fmt.Sprintf("%s/%s=%s@%d ", p.DeviceID, p.Place, p.State, p.At.Sub(now)/time.Minute)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got, want := show(), "d1/directory=ok@0 d1/keychain=ok@1 d2/local=ok@0 "; got != want {
			t.Fatalf("place states %q, want %q", got, want)
		}
		if err := s.Update(ctx, func(tx Tx) error { return tx.Unbind(ctx, "d2", "alice") }); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, func(tx Tx) error { return tx.RevokeDevice(ctx, "d1", now) }); err != nil {
			t.Fatal(err)
		}
		if got := show(); got != "" {
			t.Fatalf("place states after unbinding and revoking: %q", got)
		}
	})
}
