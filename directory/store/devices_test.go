package store

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestDevicesBindingsAndRevocation covers the records behind device
// binding: how a binding was made, unbinding, listing, revocation (which
// drops the device's bindings and pushes), the users an enrollment token
// binds, and the separate failure counts of a user.
func TestDevicesBindingsAndRevocation(t *testing.T) {
	each(t, func(t *testing.T, s, other Store) {
		ctx := t.Context()
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		err := s.Update(ctx, func(tx Tx) error {
			for _, n := range []string{"alice", "bob"} {
				if err := tx.CreateUser(ctx, User{Name: n, PasswordHash: "h", PasswordVersion: 1, PasswordChangedAt: t0, CreatedAt: t0,
					MFAFailedCount: 3, MFAFailedWindowStart: t0, LinkFailedCount: 4, LinkFailedWindowStart: t0.Add(time.Second),
					LinkLockedUntil: t0.Add(time.Hour)}); err != nil {
					return err
				}
			}
			for _, id := range []string{"d1", "d2"} {
				if err := tx.CreateDevice(ctx, Device{ID: id, Hostname: "mac-" + id, PublicKey: make([]byte, 32), CreatedAt: t0, Note: "note " + id}); err != nil {
					return err
				}
			}
			if err := tx.Bind(ctx, Binding{DeviceID: "d1", User: "alice", LocalName: "alice", BoundAt: t0, BoundBy: BoundByAdmin}); err != nil {
				return err
			}
			// Binding again keeps how it was made.
			if err := tx.Bind(ctx, Binding{DeviceID: "d1", User: "alice", LocalName: "al", BoundAt: t0, BoundBy: BoundByPassword}); err != nil {
				return err
			}
			if err := tx.Bind(ctx, Binding{DeviceID: "d1", User: "bob", LocalName: "bob", BoundAt: t0, BoundBy: BoundByEnrollment}); err != nil {
				return err
			}
			if err := tx.Bind(ctx, Binding{DeviceID: "d2", User: "bob", LocalName: "bob", BoundAt: t0, BoundBy: BoundByPassword}); err != nil {
				return err
			}
			if _, err := tx.AppendPush(ctx, "d2", "t", []byte("x"), t0); err != nil {
				return err
			}
			return tx.CreateEnrollToken(ctx, EnrollToken{Hash: []byte("tok"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), Users: []string{"alice", "bob"}})
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.View(ctx, func(tx Tx) error {
			u, err := tx.User(ctx, "alice")
			if err != nil {
				return err
			}
			if u.MFAFailedCount != 3 || !u.MFAFailedWindowStart.Equal(t0) || u.LinkFailedCount != 4 ||
				!u.LinkFailedWindowStart.Equal(t0.Add(time.Second)) || !u.LinkLockedUntil.Equal(t0.Add(time.Hour)) {
				return fmt.Errorf("failure counts %+v", u)
			}
			b, err := tx.Binding(ctx, "d1", "alice")
			if err != nil || b.BoundBy != BoundByAdmin || b.LocalName != "al" {
				return fmt.Errorf("binding %+v %v", b, err)
			}
			if bs, err := tx.DeviceBindings(ctx, "d1"); err != nil || len(bs) != 2 || bs[0].User != "alice" || bs[1].User != "bob" {
				return fmt.Errorf("d1's bindings %+v %v", bs, err)
			}
			all, err := tx.Bindings(ctx)
			if err != nil || len(all) != 3 || all[0].DeviceID != "d1" || all[0].User != "alice" || all[2].DeviceID != "d2" {
				return fmt.Errorf("bindings %+v %v", all, err)
			}
			tok, err := tx.EnrollToken(ctx, []byte("tok"))
			if err != nil || !slices.Equal(tok.Users, []string{"alice", "bob"}) {
				return fmt.Errorf("token users %+v %v", tok, err)
			}
			d, err := tx.Device(ctx, "d1")
			if err != nil || d.Note != "note d1" {
				return fmt.Errorf("device %+v %v", d, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Unbind and revoke through the other handle (replica).
		err = other.Update(ctx, func(tx Tx) error {
			if err := tx.Unbind(ctx, "d1", "bob"); err != nil {
				return err
			}
			if err := tx.Unbind(ctx, "d1", "bob"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("second unbind: %v", err)
			}
			if err := tx.RevokeDevice(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("revoking an unknown device: %v", err)
			}
			return tx.RevokeDevice(ctx, "d2", t0.Add(time.Minute))
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.View(ctx, func(tx Tx) error {
			d, err := tx.Device(ctx, "d2")
			if err != nil || !d.RevokedAt.Equal(t0.Add(time.Minute)) {
				return fmt.Errorf("revoked device %+v %v", d, err)
			}
			if ids, err := tx.RevokedDevices(ctx); err != nil || !slices.Equal(ids, []string{"d2"}) {
				return fmt.Errorf("revoked devices %v %v", ids, err)
			}
			if bs, err := tx.UserBindings(ctx, "bob"); err != nil || len(bs) != 0 {
				return fmt.Errorf("bob's bindings after unbind and revoke: %+v %v", bs, err)
			}
			if ps, err := tx.Pushes(ctx, "d2", 0); err != nil || len(ps) != 0 {
				return fmt.Errorf("pushes of a revoked device: %+v %v", ps, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestRetention covers the per-device cap on idempotency records and the
// audit log's pruning by age.
func TestRetention(t *testing.T) {
	each(t, func(t *testing.T, s, _ Store) {
		ctx := t.Context()
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		err := s.Update(ctx, func(tx Tx) error {
			for i := range 12 {
				for _, dev := range []string{"a", "b"} {
					r := IdempotencyRecord{DeviceID: dev, Key: fmt.Sprintf("k%02d", i), Fingerprint: []byte("f"), Outcome: []byte("o"),
						CreatedAt: t0.Add(time.Duration(i) * time.Second)}
					if err := tx.PutIdempotency(ctx, r, 5); err != nil {
						return err
					}
				}
			}
			for i := range 10 {
				if err := tx.Audit(ctx, AuditEvent{At: t0.Add(time.Duration(i) * time.Hour), Event: fmt.Sprint(i)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var pruned []int
		for range 3 {
			err = s.Update(ctx, func(tx Tx) error {
				n, err := tx.PruneAudit(ctx, t0.Add(7*time.Hour), 3)
				pruned = append(pruned, n)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(pruned, []int{3, 3, 1}) {
			t.Fatalf("pruned %v, want [3 3 1]", pruned)
		}
		err = s.View(ctx, func(tx Tx) error {
			for _, dev := range []string{"a", "b"} {
				for i := range 12 {
					_, err := tx.Idempotency(ctx, dev, fmt.Sprintf("k%02d", i))
					if kept := i >= 7; kept != (err == nil) {
						return fmt.Errorf("device %s record %d: %v (the newest 5 are kept)", dev, i, err)
					}
				}
			}
			evs, err := tx.AuditEvents(ctx, AuditFilter{})
			if err != nil || len(evs) != 3 || evs[0].Event != "7" {
				return fmt.Errorf("audit after pruning %+v %v", evs, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestSQLiteUpgradesVersion1 opens a database made by a release before
// schema versions were recorded: its bindings are kept (made before they
// needed proof) and it gains the new columns.
func TestSQLiteUpgradesVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{schemaV1,
		`INSERT INTO users (name, password_hash, password_version, password_changed_at, created_at) VALUES ('alice', 'h', 1, 1, 1)`,
		`INSERT INTO devices (id, hostname, public_key, created_at) VALUES ('d1', 'mac', x'00', 1)`,
		`INSERT INTO bindings (device_id, user, local_name, bound_at) VALUES ('d1', 'alice', 'alice', 1)`} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	for range 2 { // the second open finds the current version
		s, err := OpenSQLite(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		err = s.View(t.Context(), func(tx Tx) error {
			b, err := tx.Binding(t.Context(), "d1", "alice")
			if err != nil || b.BoundBy != BoundByLegacy {
				return fmt.Errorf("binding %+v %v", b, err)
			}
			d, err := tx.Device(t.Context(), "d1")
			if err != nil || !d.RevokedAt.IsZero() {
				return fmt.Errorf("device %+v %v", d, err)
			}
			return nil
		})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}
