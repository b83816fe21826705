package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// SourceAccount rows round-trip, belong to a user (and go with it), and
// two replicas recording the same stamp at once record it once: the
// compare-and-set that keeps a change reported by two replicas' watchers
// from being pushed twice.
func TestSourceAccounts(t *testing.T) {
	each(t, func(t *testing.T, s, other Store) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Microsecond)
		// (PostgreSQL then refuses to commit the transaction: fine.)
		var ghost error
		_ = s.Update(ctx, func(tx Tx) error {
			ghost = tx.PutSourceAccount(ctx, SourceAccount{User: "ghost"})
			return nil
		})
		if !errors.Is(ghost, ErrNotFound) {
			t.Fatalf("a source account without a user: %v", ghost)
		}
		err := s.Update(ctx, func(tx Tx) error {
			if err := tx.CreateUser(ctx, User{Name: "alice", PasswordHash: "h", PasswordVersion: 1, PasswordChangedAt: now, CreatedAt: now}); err != nil {
				return err
			}
			if _, err := tx.SourceAccount(ctx, "alice"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("before the first put: %v", err)
			}
			return tx.PutSourceAccount(ctx, SourceAccount{User: "alice", Stamp: "v1", Locked: true, LockedUntil: now.Add(time.Hour),
				ChangingUntil: now.Add(time.Minute), ChangingDevice: "d1", ChangingKey: "k1", BeforeStamp: "v0"})
		})
		if err != nil {
			t.Fatal(err)
		}
		want := SourceAccount{User: "alice", Stamp: "v1", Locked: true, LockedUntil: now.Add(time.Hour), ChangingUntil: now.Add(time.Minute),
			ChangingDevice: "d1", ChangingKey: "k1", BeforeStamp: "v0"}
		err = other.View(ctx, func(tx Tx) error {
			got, err := tx.SourceAccount(ctx, "alice")
			if err != nil || got != want {
				return fmt.Errorf("got %+v, %v; want %+v", got, err, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Both handles record "v2" only if the stamp is not yet "v2".
		bumps := 0
		var wg sync.WaitGroup
		for _, st := range []Store{s, other, s, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := st.Update(ctx, func(tx Tx) error {
					a, err := tx.SourceAccount(ctx, "alice")
					if err != nil || a.Stamp == "v2" {
						return err
					}
					a.Stamp = "v2"
					if err := tx.PutSourceAccount(ctx, a); err != nil {
						return err
					}
					u, err := tx.User(ctx, "alice")
					if err != nil {
						return err
					}
					u.PasswordVersion++
					return tx.UpdateUser(ctx, u)
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		err = s.Update(ctx, func(tx Tx) error {
			u, err := tx.User(ctx, "alice")
			if err != nil {
				return err
			}
			bumps = int(u.PasswordVersion - 1)
			return tx.DeleteUser(ctx, "alice")
		})
		if err != nil || bumps != 1 {
			t.Fatalf("the stamp was recorded %d times (%v), want once", bumps, err)
		}
		err = s.View(ctx, func(tx Tx) error {
			if _, err := tx.SourceAccount(ctx, "alice"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("after the user was deleted: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
