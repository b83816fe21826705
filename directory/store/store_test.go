package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/internal/tools/pgtest"
	"github.com/lockstep-dev/lockstep/protocol"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends are the implementations every conformance test runs against;
// open returns two handles on one database (for SQLite the same one) so
// tests can act as two replicas.
var backends = []struct {
	name string
	open func(t *testing.T) (Store, Store)
}{
	{"sqlite", func(t *testing.T) (Store, Store) { s := openSQLite(t); return s, s }},
	{"postgres", func(t *testing.T) (Store, Store) {
		url := pgtest.Database(t)
		return openPG(t, url), openPG(t, url)
	}},
}

func openSQLite(t *testing.T) *SQLite {
	t.Helper()
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPG(t *testing.T, url string) *Postgres {
	t.Helper()
	s, err := OpenPostgres(t.Context(), url, PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// each runs fn against every backend.
func each(t *testing.T, fn func(t *testing.T, a, b Store)) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			a, b := be.open(t)
			fn(t, a, b)
		})
	}
}

func TestOutboxSequence(t *testing.T) {
	each(t, func(t *testing.T, s, _ Store) {
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
		if len(ps) != 2 || ps[0].Seq != 4 || string(ps[1].Body) != "4" || ps[1].Type != "t" || ps[1].DeviceID != "d1" {
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
		// A nil body is stored as empty, and a read-only transaction
		// refuses writes.
		if err := s.View(ctx, func(tx Tx) error {
			_, err := tx.AppendPush(ctx, "d1", "t", nil, now)
			return err
		}); err == nil {
			t.Fatal("a View transaction stored a push")
		}
	})
}

func TestUsersHistoryAndCascade(t *testing.T) {
	each(t, func(t *testing.T, s, _ Store) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Microsecond)
		u := User{Name: "alice", PasswordHash: "h0", PasswordVersion: 1, PasswordChangedAt: now, CreatedAt: now, TOTPSecret: []byte{1, 2}}
		err := s.Update(ctx, func(tx Tx) error {
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
			// A duplicate is refused and the transaction goes on.
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
			if !got.PasswordChangedAt.Equal(now) || string(got.TOTPSecret) != "\x01\x02" || !got.LockedUntil.IsZero() ||
				!got.FailedWindowStart.IsZero() || got.PasswordChangedAt.Location() != time.UTC {
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
		if err := s.Update(ctx, func(tx Tx) error { return tx.DeleteUser(ctx, "alice") }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleting a deleted user: %v", err)
		}
		err = s.View(ctx, func(tx Tx) error {
			if _, err := tx.User(ctx, "alice"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("user after delete: %v", err)
			}
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
	})
}

// TestRoundTrips stores and reads back every kind of record.
func TestRoundTrips(t *testing.T) {
	each(t, func(t *testing.T, s, _ Store) {
		ctx := t.Context()
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
		err := s.Update(ctx, func(tx Tx) error {
			for _, n := range []string{"bob", "carol"} {
				changed := t0
				if n == "carol" {
					changed = t0.Add(48 * time.Hour)
				}
				if err := tx.CreateUser(ctx, User{Name: n, DisplayName: "D " + n, PasswordHash: "h", PasswordVersion: 3,
					PasswordChangedAt: changed, MustChange: true, FailedCount: 2, FailedWindowStart: t0, LockedUntil: t0.Add(time.Hour),
					TOTPLastStep: 42, CreatedAt: t0}); err != nil {
					return err
				}
			}
			if err := tx.CreateDevice(ctx, Device{ID: "d2", Hostname: "mac", PublicKey: []byte{9, 9}, CreatedAt: t0}); err != nil {
				return err
			}
			if err := tx.CreateDevice(ctx, Device{ID: "d2", Hostname: "dup", PublicKey: []byte{1}, CreatedAt: t0}); !errors.Is(err, ErrExists) {
				return fmt.Errorf("duplicate device: %v", err)
			}
			if err := tx.TouchDevice(ctx, "d2", t0.Add(time.Minute), "192.0.2.7"); err != nil {
				return err
			}
			if err := tx.TouchDevice(ctx, "nope", t0, ""); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("touching an unknown device: %v", err)
			}
			if err := tx.Bind(ctx, Binding{DeviceID: "d2", User: "bob", LocalName: "b", BoundAt: t0}); err != nil {
				return err
			}
			if err := tx.SetSyncedVersion(ctx, "d2", "bob", 3, t0.Add(2*time.Minute)); err != nil {
				return err
			}
			// Binding again keeps the synced version and changes the name.
			if err := tx.Bind(ctx, Binding{DeviceID: "d2", User: "bob", LocalName: "bobby", BoundAt: t0.Add(time.Hour)}); err != nil {
				return err
			}
			if err := tx.SetExpiryWarned(ctx, "d2", "bob", t0.Add(3*time.Minute)); err != nil {
				return err
			}
			if err := tx.SetSyncedVersion(ctx, "d2", "carol", 1, t0); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("sync of an unbound user: %v", err)
			}
			if err := tx.CreateEnrollToken(ctx, EnrollToken{Hash: []byte("th"), Note: "n", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
				return err
			}
			if err := tx.UseEnrollToken(ctx, []byte("th"), "d2", t0.Add(time.Minute)); err != nil {
				return err
			}
			if err := tx.UseEnrollToken(ctx, []byte("th"), "d3", t0.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("second use of a token: %v", err)
			}
			if _, err := tx.Policy(ctx); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("policy before set: %v", err)
			}
			p := protocol.DefaultPolicy()
			p.MinLength = 17
			if err := tx.SetPolicy(ctx, p); err != nil {
				return err
			}
			for i, ev := range []AuditEvent{
				{At: t0, Event: "a", Actor: "admin", User: "bob", Detail: map[string]string{"k": "v"}},
				{At: t0.Add(time.Second), Event: "b", Actor: "device", Device: "d2", Source: "10.0.0.1"},
				{At: t0.Add(2 * time.Second), Event: "c", User: "carol"},
			} {
				if err := tx.Audit(ctx, ev); err != nil {
					return fmt.Errorf("audit %d: %w", i, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.View(ctx, func(tx Tx) error {
			u, err := tx.User(ctx, "bob")
			if err != nil {
				return err
			}
			if u.DisplayName != "D bob" || !u.MustChange || u.FailedCount != 2 || !u.FailedWindowStart.Equal(t0) ||
				!u.LockedUntil.Equal(t0.Add(time.Hour)) || u.TOTPSecret != nil || u.TOTPLastStep != 42 || u.PasswordVersion != 3 {
				return fmt.Errorf("user %+v", u)
			}
			us, err := tx.UsersChangedBefore(ctx, t0.Add(time.Hour))
			if err != nil || len(us) != 1 || us[0].Name != "bob" {
				return fmt.Errorf("changed before: %v %v", us, err)
			}
			if us, err := tx.Users(ctx); err != nil || len(us) != 2 || us[0].Name != "bob" || us[1].Name != "carol" {
				return fmt.Errorf("users: %v %v", us, err)
			}
			d, err := tx.Device(ctx, "d2")
			if err != nil || d.Hostname != "mac" || string(d.PublicKey) != "\x09\x09" || !d.LastSeenAt.Equal(t0.Add(time.Minute)) ||
				!d.CreatedAt.Equal(t0) || d.LastAddr != "192.0.2.7" || !d.RevokedAt.IsZero() {
				return fmt.Errorf("device %+v %v", d, err)
			}
			if ds, err := tx.Devices(ctx); err != nil || len(ds) != 1 {
				return fmt.Errorf("devices %v %v", ds, err)
			}
			b, err := tx.Binding(ctx, "d2", "bob")
			if err != nil || b.LocalName != "bobby" || b.SyncedVersion != 3 || !b.SyncedAt.Equal(t0.Add(2*time.Minute)) ||
				!b.BoundAt.Equal(t0) || !b.ExpiryWarnedAt.Equal(t0.Add(3*time.Minute)) {
				return fmt.Errorf("binding %+v %v", b, err)
			}
			if _, err := tx.Binding(ctx, "d2", "carol"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("missing binding: %v", err)
			}
			e, err := tx.EnrollToken(ctx, []byte("th"))
			if err != nil || e.Note != "n" || e.DeviceID != "d2" || !e.UsedAt.Equal(t0.Add(time.Minute)) || !e.ExpiresAt.Equal(t0.Add(time.Hour)) {
				return fmt.Errorf("token %+v %v", e, err)
			}
			if _, err := tx.EnrollToken(ctx, []byte("other")); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("unknown token: %v", err)
			}
			if p, err := tx.Policy(ctx); err != nil || p.MinLength != 17 {
				return fmt.Errorf("policy %+v %v", p, err)
			}
			all, err := tx.AuditEvents(ctx, AuditFilter{})
			if err != nil || len(all) != 3 || all[0].Event != "a" || all[0].Detail["k"] != "v" || all[1].Detail != nil ||
				all[1].Source != "10.0.0.1" || all[1].Device != "d2" || !all[2].At.Equal(t0.Add(2*time.Second)) || all[0].ID >= all[1].ID {
				return fmt.Errorf("audit %+v %v", all, err)
			}
			if evs, err := tx.AuditEvents(ctx, AuditFilter{User: "bob"}); err != nil || len(evs) != 1 || evs[0].Event != "a" {
				return fmt.Errorf("audit for bob %+v %v", evs, err)
			}
			if evs, err := tx.AuditEvents(ctx, AuditFilter{Since: t0.Add(time.Second)}); err != nil || len(evs) != 2 || evs[0].Event != "b" {
				return fmt.Errorf("audit since %+v %v", evs, err)
			}
			if evs, err := tx.AuditEvents(ctx, AuditFilter{Limit: 2}); err != nil || len(evs) != 2 || evs[0].Event != "b" || evs[1].Event != "c" {
				return fmt.Errorf("audit limit (newest, oldest first) %+v %v", evs, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestSettingsAndIdempotency(t *testing.T) {
	each(t, func(t *testing.T, s, other Store) {
		ctx := t.Context()
		t0 := time.Now().UTC().Truncate(time.Microsecond)
		err := s.Update(ctx, func(tx Tx) error {
			if _, err := tx.Setting(ctx, "k"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("unset setting: %v", err)
			}
			if err := tx.CreateSetting(ctx, "k", []byte("v1")); err != nil {
				return err
			}
			if err := tx.CreateSetting(ctx, "k", []byte("v2")); !errors.Is(err, ErrExists) {
				return fmt.Errorf("second create: %v", err)
			}
			if err := tx.PutIdempotency(ctx, IdempotencyRecord{DeviceID: "d", Key: "k1", Fingerprint: []byte("f"), Outcome: []byte("o1"), CreatedAt: t0}, 10); err != nil {
				return err
			}
			return tx.PutIdempotency(ctx, IdempotencyRecord{DeviceID: "d", Key: "old", Fingerprint: []byte("f"), Outcome: []byte("o"), CreatedAt: t0.Add(-time.Hour)}, 10)
		})
		if err != nil {
			t.Fatal(err)
		}
		// The other handle (replica) sees both and cannot overwrite them;
		// the refused insert does not spoil its transaction.
		err = other.Update(ctx, func(tx Tx) error {
			if v, err := tx.Setting(ctx, "k"); err != nil || string(v) != "v1" {
				return fmt.Errorf("setting %q %v", v, err)
			}
			// PutSetting replaces a value (a source's sync checkpoint).
			for _, v := range []string{"c1", "c2"} {
				if err := tx.PutSetting(ctx, "cp", []byte(v)); err != nil {
					return err
				}
			}
			if v, err := tx.Setting(ctx, "cp"); err != nil || string(v) != "c2" {
				return fmt.Errorf("put setting: %q %v", v, err)
			}
			err := tx.PutIdempotency(ctx, IdempotencyRecord{DeviceID: "d", Key: "k1", Fingerprint: []byte("g"), Outcome: []byte("o2"), CreatedAt: t0}, 10)
			if !errors.Is(err, ErrExists) {
				return fmt.Errorf("second record: %v", err)
			}
			return tx.PruneIdempotency(ctx, t0.Add(-time.Minute))
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.View(ctx, func(tx Tx) error {
			r, err := tx.Idempotency(ctx, "d", "k1")
			if err != nil || string(r.Outcome) != "o1" || string(r.Fingerprint) != "f" || !r.CreatedAt.Equal(t0) {
				return fmt.Errorf("record %+v %v", r, err)
			}
			if _, err := tx.Idempotency(ctx, "d", "old"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("pruned record: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestConcurrentWriters checks that concurrent read-modify-write
// transactions, half of them through the second handle (another replica
// for PostgreSQL), serialise and lose no update.
func TestConcurrentWriters(t *testing.T) {
	each(t, func(t *testing.T, s, other Store) {
		ctx := t.Context()
		now := time.Now()
		if err := s.Update(ctx, func(tx Tx) error {
			return tx.CreateUser(ctx, User{Name: "c", PasswordHash: "h", PasswordChangedAt: now, CreatedAt: now})
		}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			st := s
			if i%2 == 1 {
				st = other
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 25 {
					err := st.Update(ctx, func(tx Tx) error {
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
					_ = st.View(ctx, func(tx Tx) error { _, err := tx.User(ctx, "c"); return err })
				}
			}()
		}
		wg.Wait()
		var u User
		if err := s.View(ctx, func(tx Tx) error {
			var err error
			u, err = tx.User(ctx, "c")
			return err
		}); err != nil || u.PasswordVersion != 200 {
			t.Fatalf("version %d (%v), want 200", u.PasswordVersion, err)
		}
	})
}

// TestConcurrentPushes appends pushes for one device from many writers on
// both handles: every sequence number is handed out once, with no gap,
// and the outbox holds them in order.
func TestConcurrentPushes(t *testing.T) {
	each(t, func(t *testing.T, s, other Store) {
		ctx := t.Context()
		now := time.Now()
		if err := s.Update(ctx, func(tx Tx) error {
			return tx.CreateDevice(ctx, Device{ID: "d", Hostname: "h", PublicKey: make([]byte, 32), CreatedAt: now})
		}); err != nil {
			t.Fatal(err)
		}
		const writers, each = 6, 20
		var mu sync.Mutex
		got := map[uint64]string{}
		var wg sync.WaitGroup
		for w := range writers {
			st := s
			if w%2 == 1 {
				st = other
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					body := fmt.Sprintf("w%d-%d", w, i)
					var seq uint64
					if err := st.Update(ctx, func(tx Tx) error {
						var err error
						seq, err = tx.AppendPush(ctx, "d", "t", []byte(body), now)
						return err
					}); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if prev, dup := got[seq]; dup {
						t.Errorf("seq %d handed out twice (%s and %s)", seq, prev, body)
					}
					got[seq] = body
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		var ps []Push
		if err := other.View(ctx, func(tx Tx) error {
			var err error
			ps, err = tx.Pushes(ctx, "d", 0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(ps) != writers*each {
			t.Fatalf("%d pushes stored, want %d", len(ps), writers*each)
		}
		for i, p := range ps {
			if p.Seq != uint64(i+1) || string(p.Body) != got[p.Seq] {
				t.Fatalf("push %d: seq %d body %q, want seq %d body %q", i, p.Seq, p.Body, i+1, got[uint64(i+1)])
			}
		}
	})
}
