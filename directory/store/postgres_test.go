package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lockstep-dev/lockstep/internal/tools/pgtest"
	"github.com/lockstep-dev/lockstep/protocol"
)

// TestPostgresMigrations starts several replicas at once on an empty
// database: the advisory lock makes one migrate and the others find the
// schema in place; reopening is a no-op; a newer schema is refused.
func TestPostgresMigrations(t *testing.T) {
	url := pgtest.Database(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenPostgres(t.Context(), url, PostgresOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	s := openPG(t, url)
	var versions []int
	rows, err := s.pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err == nil {
		versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	}
	if err != nil || len(versions) != len(pgMigrations) || versions[len(versions)-1] != len(pgMigrations) {
		t.Fatalf("schema_migrations %v %v, want 1..%d once each", versions, err, len(pgMigrations))
	}
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPostgres(t.Context(), url, PostgresOptions{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open on a newer schema: %v", err)
	}
}

// TestPostgresConnectionErrorsHideThePassword checks that neither a
// malformed connection string nor a refused login echoes the password.
func TestPostgresConnectionErrorsHideThePassword(t *testing.T) {
	url := pgtest.Database(t)
	pw := pgtest.Password(t)
	for _, bad := range []string{
		strings.Replace(url, "127.0.0.1:", "127.0.0.1:x", 1), // bad port
		strings.Replace(url, "postgres://", "postgres://%zz", 1),
		"host=127.0.0.1 password=" + pw + " port=notaport",
	} {
		_, err := OpenPostgres(t.Context(), bad, PostgresOptions{})
		if err == nil {
			t.Fatalf("opened %q", bad)
		}
		if strings.Contains(err.Error(), pw) {
			t.Fatalf("error quotes the password: %v", err)
		}
	}
	_, err := OpenPostgres(t.Context(), pgtest.WithoutPassword(url), PostgresOptions{Password: []byte("wrong-" + pw)})
	if err == nil || strings.Contains(err.Error(), pw) {
		t.Fatalf("wrong password: %v", err)
	}
	// The password option replaces one missing from the string.
	s, err := OpenPostgres(t.Context(), pgtest.WithoutPassword(url), PostgresOptions{Password: []byte(pw)})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestPostgresAbortedTransaction: PostgreSQL aborts a transaction at its
// first error; a function that ignores the error must not report success.
func TestPostgresAbortedTransaction(t *testing.T) {
	s := openPG(t, pgtest.Database(t))
	ctx := t.Context()
	err := s.Update(ctx, func(tx Tx) error {
		if err := tx.CreateDevice(ctx, Device{ID: "d", Hostname: "h", PublicKey: []byte{1}, CreatedAt: time.Now()}); err != nil {
			return err
		}
		_ = tx.Bind(ctx, Binding{DeviceID: "d", User: "nobody", LocalName: "n", BoundAt: time.Now()}) // foreign key
		return nil
	})
	if err == nil {
		t.Fatal("Update succeeded after a failed statement")
	}
	if err := s.View(ctx, func(tx Tx) error { _, err := tx.Device(ctx, "d"); return err }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("device of the failed transaction: %v", err)
	}
}

// changes collects what a Listen reports.
type changes struct {
	mu  sync.Mutex
	got []Change
	ch  chan struct{}
}

func listen(t *testing.T, s *Postgres) *changes {
	c := &changes{ch: make(chan struct{}, 100)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Listen(t.Context(), func(ch Change) {
			c.mu.Lock()
			c.got = append(c.got, ch)
			c.mu.Unlock()
			c.ch <- struct{}{}
		})
	}()
	t.Cleanup(func() { <-done })
	return c
}

// next waits for the next change.
func (c *changes) next(t *testing.T) Change {
	t.Helper()
	select {
	case <-c.ch:
	case <-time.After(20 * time.Second):
		t.Fatal("no change reported")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.got[0]
	c.got = c.got[1:]
	return ch
}

func TestPostgresListen(t *testing.T) {
	url := pgtest.Database(t)
	var logs bytes.Buffer
	var lmu sync.Mutex
	a := openPG(t, url)
	b, err := OpenPostgres(t.Context(), url, PostgresOptions{Log: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &lmu}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := t.Context()
	fromB := listen(t, b)
	fromA := listen(t, a)
	if ch := fromB.next(t); !ch.Resync {
		t.Fatalf("first change %+v, want resync", ch)
	}
	if ch := fromA.next(t); !ch.Resync {
		t.Fatalf("first change %+v, want resync", ch)
	}
	now := time.Now()
	if err := a.Update(ctx, func(tx Tx) error {
		for _, id := range []string{"d1", "d2", "d3"} {
			if err := tx.CreateDevice(ctx, Device{ID: id, Hostname: "h", PublicKey: []byte{1}, CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A rolled-back transaction announces nothing.
	_ = a.Update(ctx, func(tx Tx) error {
		if _, err := tx.AppendPush(ctx, "d3", "t", nil, now); err != nil {
			return err
		}
		return errors.New("changed my mind")
	})
	if err := a.Update(ctx, func(tx Tx) error {
		for _, id := range []string{"d1", "d2", "d1"} {
			if _, err := tx.AppendPush(ctx, id, "t", []byte("secret-free body"), now); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ch := fromB.next(t); !slices.Equal(ch.Devices, []string{"d1", "d2"}) || ch.Policy || ch.Resync || ch.AllDevices {
		t.Fatalf("change %+v, want devices d1 d2", ch)
	}
	if err := a.Update(ctx, func(tx Tx) error { return tx.SetPolicy(ctx, protocol.DefaultPolicy()) }); err != nil {
		t.Fatal(err)
	}
	if ch := fromB.next(t); !ch.Policy || len(ch.Devices) != 0 {
		t.Fatalf("change %+v, want policy", ch)
	}
	// B's own commit is not reported to B, but is to A.
	if err := b.Update(ctx, func(tx Tx) error { _, err := tx.AppendPush(ctx, "d2", "t", nil, now); return err }); err != nil {
		t.Fatal(err)
	}
	if ch := fromA.next(t); !slices.Equal(ch.Devices, []string{"d2"}) {
		t.Fatalf("A heard %+v, want d2 from B", ch)
	}
	// Kill B's listening session: it reconnects and reports a resync.
	pgtest.Exec(t, url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`, ListenAppName)
	if ch := fromB.next(t); !ch.Resync {
		t.Fatalf("after the kill B heard %+v, want a resync (an earlier change leaked?)", ch)
	}
	if ch := fromA.next(t); !ch.Resync {
		t.Fatalf("after the kill A heard %+v, want a resync", ch)
	}
	if err := a.Update(ctx, func(tx Tx) error { _, err := tx.AppendPush(ctx, "d3", "t", nil, now); return err }); err != nil {
		t.Fatal(err)
	}
	if ch := fromB.next(t); !slices.Equal(ch.Devices, []string{"d3"}) {
		t.Fatalf("after reconnecting B heard %+v, want d3", ch)
	}
	// A revocation names the device, so the replica holding its socket
	// can drop it.
	if err := a.Update(ctx, func(tx Tx) error { return tx.RevokeDevice(ctx, "d1", now) }); err != nil {
		t.Fatal(err)
	}
	if ch := fromB.next(t); !slices.Equal(ch.Revoked, []string{"d1"}) || len(ch.Devices) != 0 {
		t.Fatalf("B heard %+v, want d1 revoked", ch)
	}
	lmu.Lock()
	defer lmu.Unlock()
	if !strings.Contains(logs.String(), "postgres change feed lost") {
		t.Fatalf("the lost connection was not logged: %s", logs.String())
	}
	if pw := pgtest.Password(t); strings.Contains(logs.String(), pw) {
		t.Fatal("the log holds the database password")
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestNotificationPayloads: many devices are split into payloads under
// PostgreSQL's 8000-byte limit that together name each device once; past
// maxListed one "all devices" notification goes instead.
func TestNotificationPayloads(t *testing.T) {
	for _, n := range []int{1, 300, 1000, maxListed, maxListed + 1} {
		tx := &pgTx{policy: n == 300}
		for i := range n {
			tx.devices = append(tx.devices, fmt.Sprintf("dev_%016d", i))
		}
		var named []string
		var all, policy bool
		for _, p := range tx.payloads("origin") {
			if len(p) >= 8000 {
				t.Fatalf("%d devices: payload of %d bytes", n, len(p))
			}
			var m notification
			if err := json.Unmarshal([]byte(p), &m); err != nil || m.Origin != "origin" {
				t.Fatalf("payload %q: %v", p, err)
			}
			named = append(named, m.Devices...)
			all = all || m.All
			policy = policy || m.Policy
		}
		if n > maxListed {
			if !all || len(named) != 0 {
				t.Fatalf("%d devices: all=%v named=%d", n, all, len(named))
			}
			continue
		}
		if all || !slices.Equal(named, tx.devices) || policy != (n == 300) {
			t.Fatalf("%d devices: all=%v named=%d policy=%v", n, all, len(named), policy)
		}
	}
	if p := (&pgTx{}).payloads("o"); p != nil {
		t.Fatalf("payloads with nothing to say: %v", p)
	}
	// Revocations go in payloads of their own, each under the limit.
	tx := &pgTx{devices: []string{"d1"}}
	var want []string
	for i := range 600 {
		id := fmt.Sprintf("dev_%016d", i)
		tx.revoked = append(tx.revoked, id)
		want = append(want, id)
	}
	var revoked, devices []string
	for _, p := range tx.payloads("o") {
		var m notification
		if len(p) >= 8000 || json.Unmarshal([]byte(p), &m) != nil {
			t.Fatalf("payload of %d bytes: %.80s", len(p), p)
		}
		revoked, devices = append(revoked, m.Revoked...), append(devices, m.Devices...)
	}
	if !slices.Equal(revoked, want) || !slices.Equal(devices, []string{"d1"}) {
		t.Fatalf("revoked %d devices %v", len(revoked), devices)
	}
}
