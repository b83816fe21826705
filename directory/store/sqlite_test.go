package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T) *SQLite {
	t.Helper()
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOutboxSequence(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	now := time.Now()
	err := s.Update(ctx, func(tx Tx) error {
		if err := tx.CreateDevice(ctx, Device{ID: "d1", Hostname: "h", PublicKey: make([]byte, 32), CreatedAt: now}); err != nil {
			return err
		}
		for i := range 5 {
			seq, err := tx.AppendPush(ctx, "d1", "t", []byte(fmt.Sprint(i)), now)
			if err != nil {
				return err
			}
			if seq != uint64(i+1) {
				return fmt.Errorf("seq %d, want %d", seq, i+1)
			}
		}
		return tx.AckPushes(ctx, "d1", 3)
	})
	if err != nil {
		t.Fatal(err)
	}
	var ps []Push
	if err := s.View(ctx, func(tx Tx) error {
		var err error
		ps, err = tx.Pushes(ctx, "d1", 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Seq != 4 || string(ps[1].Body) != "4" {
		t.Fatalf("pushes after ack 3: %+v", ps)
	}
	// A push to an unknown device fails and rolls the transaction back.
	err = s.Update(ctx, func(tx Tx) error {
		if _, err := tx.AppendPush(ctx, "d1", "t", nil, now); err != nil {
			return err
		}
		_, err := tx.AppendPush(ctx, "nope", "t", nil, now)
		return err
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("push to unknown device: %v", err)
	}
	if err := s.View(ctx, func(tx Tx) error {
		d, err := tx.Device(ctx, "d1")
		if err == nil && d.LastSeq != 5 {
			err = fmt.Errorf("last_seq %d after rollback, want 5", d.LastSeq)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestUsersHistoryAndCascade(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := User{Name: "alice", PasswordHash: "h0", PasswordVersion: 1, PasswordChangedAt: now, CreatedAt: now, TOTPSecret: []byte{1, 2}}
	err := s.Update(ctx, func(tx Tx) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.CreateUser(ctx, u); !errors.Is(err, ErrExists) {
			return fmt.Errorf("duplicate user: %v", err)
		}
		for i := range 6 {
			if err := tx.AddPasswordHistory(ctx, "alice", fmt.Sprintf("h%d", i), now, 4); err != nil {
				return err
			}
		}
		if err := tx.CreateDevice(ctx, Device{ID: "d1", Hostname: "h", PublicKey: make([]byte, 32), CreatedAt: now}); err != nil {
			return err
		}
		return tx.Bind(ctx, Binding{DeviceID: "d1", User: "alice", LocalName: "al", BoundAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx Tx) error {
		got, err := tx.User(ctx, "alice")
		if err != nil {
			return err
		}
		if !got.PasswordChangedAt.Equal(now) || string(got.TOTPSecret) != "\x01\x02" || !got.LockedUntil.IsZero() {
			return fmt.Errorf("user round trip: %+v", got)
		}
		h, err := tx.PasswordHistory(ctx, "alice", 10)
		if err != nil {
			return err
		}
		if fmt.Sprint(h) != "[h5 h4 h3 h2]" {
			return fmt.Errorf("history %v", h)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx Tx) error { return tx.DeleteUser(ctx, "alice") }); err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx Tx) error {
		bs, err := tx.UserBindings(ctx, "alice")
		if err != nil || len(bs) != 0 {
			return fmt.Errorf("bindings after delete: %v %v", bs, err)
		}
		h, err := tx.PasswordHistory(ctx, "alice", 10)
		if err != nil || len(h) != 0 {
			return fmt.Errorf("history after delete: %v %v", h, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentWriters checks that concurrent read-modify-write
// transactions serialise (IMMEDIATE) and lose no update.
func TestConcurrentWriters(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	now := time.Now()
	if err := s.Update(ctx, func(tx Tx) error {
		return tx.CreateUser(ctx, User{Name: "c", PasswordHash: "h", PasswordChangedAt: now, CreatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				err := s.Update(ctx, func(tx Tx) error {
					u, err := tx.User(ctx, "c")
					if err != nil {
						return err
					}
					u.PasswordVersion++
					return tx.UpdateUser(ctx, u)
				})
				if err != nil {
					t.Error(err)
					return
				}
				_ = s.View(ctx, func(tx Tx) error { _, err := tx.User(ctx, "c"); return err })
			}
		}()
	}
	wg.Wait()
	_ = s.View(ctx, func(tx Tx) error {
		u, err := tx.User(ctx, "c")
		if err != nil || u.PasswordVersion != 200 {
			t.Fatalf("version %d (%v), want 200", u.PasswordVersion, err)
		}
		return nil
	})
}
