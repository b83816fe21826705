package directory

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/internal/tools/pgtest"
	"github.com/lockstep-dev/lockstep/internal/tools/sambatest"
	"github.com/lockstep-dev/lockstep/internal/tools/slapdtest"
	"github.com/lockstep-dev/lockstep/protocol"
)

// The whole suite runs on PostgreSQL too with LOCKSTEP_TEST_STORE=postgres
// (make directory-pg); the tests in this file always need it. The Active
// Directory tests (ad_test.go) start a Samba DC and the LDAP ones
// (ldap_test.go) a slapd, stopped here too.
func TestMain(m *testing.M) {
	code := m.Run()
	sambatest.Stop()
	slapdtest.Stop()
	pgtest.Stop()
	os.Exit(code)
}

// pgDatabases maps a data directory to its database, so that a test that
// restarts a server on the same directory finds its data again.
var pgDatabases sync.Map

func pgDatabaseFor(t *testing.T, dir string) string {
	if url, ok := pgDatabases.Load(dir); ok {
		return url.(string)
	}
	url := pgtest.Database(t)
	pgDatabases.Store(dir, url)
	return url
}

// pgContents is every row of the directory's tables as text, for the
// secret scan (bytea columns come out hex-encoded).
func pgContents(t *testing.T, url string) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("reading the database: %v", err)
		return nil
	}
	defer conn.Close(ctx)
	var out []byte
	for _, table := range []string{"users", "password_history", "devices", "bindings", "outbox", "enroll_tokens",
		"idempotency", "settings", "audit"} {
		rows, err := conn.Query(ctx, `SELECT t::text FROM `+table+` t`)
		if err != nil {
			t.Errorf("reading %s: %v", table, err)
			continue
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Errorf("reading %s: %v", table, err)
		}
		for _, s := range texts {
			out = append(out, s...)
			out = append(out, '\n')
		}
	}
	return out
}

// replicas starts n directory servers on one new PostgreSQL database,
// each with its own data directory (TLS files, admin token) and all with
// one master key file.
func replicas(t *testing.T, n int, opts ...func(*Config)) []*testEnv {
	url := pgtest.Database(t)
	key := filepath.Join(t.TempDir(), "master.key")
	out := make([]*testEnv, n)
	for i := range out {
		out[i] = newEnv(t, append([]func(*Config){func(c *Config) { c.DatabaseURL = url; c.MasterKeyFile = key }}, opts...)...)
	}
	return out
}

// TestReplicaResetReachesAgentOnOtherReplica: an admin reset through
// replica A's admin API reaches the agent connected to replica B.
func TestReplicaResetReachesAgentOnOtherReplica(t *testing.T) {
	rs := replicas(t, 2)
	a, b := rs[0], rs[1]
	a.addUser("alice", alicePW, false)
	dev := a.enroll("alice")
	ag := b.connect(dev, 0)
	ag.bind("alice")
	res, err := a.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{Temporary: true})
	if err != nil {
		t.Fatal(err)
	}
	a.secret(string(res.Password))
	b.secret(string(res.Password))
	p := ag.push()
	r := decodeAs[protocol.PasswordReset](t, p)
	if p.Type != protocol.TypePasswordReset || p.Seq != 1 || !r.Temporary || r.User != "alice" || r.PasswordVersion != res.User.PasswordVersion {
		t.Fatalf("push %s seq %d %+v, want password_reset 1 temporary version %d", p.Type, p.Seq, r, res.User.PasswordVersion)
	}
	ag.noPush()
	// B's admin API sees the same directory.
	u, err := b.adm.User(t.Context(), "alice")
	if err != nil || !u.MustChange || u.PasswordVersion != res.User.PasswordVersion {
		t.Fatalf("alice through B: %+v %v", u, err)
	}
	// The agent can use the temporary password through B at once.
	ag.ok(protocol.TypeVerifyPassword, "", verify("alice", string(res.Password)), nil)
}

// TestReplicaConcurrentPushesOneDevice: resets through both replicas at
// once reach the agent on B as one gapless, ordered sequence, each once.
func TestReplicaConcurrentPushesOneDevice(t *testing.T) {
	rs := replicas(t, 2)
	a, b := rs[0], rs[1]
	a.addUser("alice", alicePW, false)
	dev := a.enroll("alice")
	ag := b.connect(dev, 0)
	ag.bind("alice")
	const each = 12
	var wg sync.WaitGroup
	for _, e := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				res, err := e.adm.ResetPassword(context.Background(), "alice", admin.ResetRequest{})
				if err != nil {
					t.Error(err)
					return
				}
				a.secret(string(res.Password))
				b.secret(string(res.Password))
			}
		}()
	}
	wg.Wait()
	versions := map[int64]bool{}
	for i := range 2 * each {
		p := ag.push()
		if p.Seq != uint64(i+1) {
			t.Fatalf("push %d has seq %d: out of order, duplicated or a gap", i+1, p.Seq)
		}
		r := decodeAs[protocol.PasswordReset](t, p)
		if versions[r.PasswordVersion] {
			t.Fatalf("password version %d pushed twice", r.PasswordVersion)
		}
		versions[r.PasswordVersion] = true
	}
	ag.noPush()
	if u, _ := a.adm.User(t.Context(), "alice"); u.PasswordVersion != 1+2*each {
		t.Fatalf("password version %d, want %d", u.PasswordVersion, 1+2*each)
	}
}

// TestReplicaListenerRecovers kills replica B's LISTEN session; B
// reconnects, catches its agents up, and no push is lost.
func TestReplicaListenerRecovers(t *testing.T) {
	rs := replicas(t, 2)
	a, b := rs[0], rs[1]
	a.addUser("alice", alicePW, false)
	dev := a.enroll("alice")
	ag := b.connect(dev, 0)
	ag.bind("alice")
	kill := func() {
		pgtest.Exec(t, b.dbURL, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database()`, store.ListenAppName)
	}
	var seq uint64
	for round := range 3 {
		// Both listeners die; the reset lands while B may not listen.
		kill()
		res, err := a.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{})
		if err != nil {
			t.Fatal(err)
		}
		a.secret(string(res.Password))
		b.secret(string(res.Password))
		p := ag.push()
		seq++
		if r := decodeAs[protocol.PasswordReset](t, p); p.Seq != seq || r.PasswordVersion != res.User.PasswordVersion {
			t.Fatalf("round %d: push seq %d version %d, want seq %d version %d", round, p.Seq, r.PasswordVersion, seq, res.User.PasswordVersion)
		}
	}
	waitFor(t, "B to log the lost feed", func() bool { return strings.Contains(b.logs.String(), "postgres change feed lost") })
	// After recovery live pushes flow again, once each.
	res, err := a.adm.ResetPassword(t.Context(), "alice", admin.ResetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	a.secret(string(res.Password))
	b.secret(string(res.Password))
	if p := ag.push(); p.Seq != seq+1 {
		t.Fatalf("push seq %d after recovery, want %d", p.Seq, seq+1)
	}
	ag.noPush()
}

// TestReplicaIdempotentRetry: a change_password retried on replica B after
// the first went to A returns A's outcome; the same request sent to both
// at once is applied once and both get that outcome.
func TestReplicaIdempotentRetry(t *testing.T) {
	rs := replicas(t, 2)
	a, b := rs[0], rs[1]
	a.addUser("alice", alicePW, false)
	dev := a.enroll("alice")
	onA := a.connect(dev, 0)
	onA.bind("alice")
	next := a.secret("Brand-New-Pass-1")
	b.secret(next)
	req := change("alice", alicePW, next, "")
	first := onA.call(protocol.TypeChangePassword, "change-1", req)
	if first.Error != nil {
		t.Fatal(first.Error)
	}
	onA.ws.Close()
	onB := b.connect(dev, 0)
	again := onB.call(protocol.TypeChangePassword, "change-1", req)
	if again.Error != nil {
		t.Fatalf("retry on B: %v (it must return the first outcome)", again.Error)
	}
	if s1, s2 := decodeAs[protocol.AccountState](t, first), decodeAs[protocol.AccountState](t, again); s1.PasswordVersion != 2 || s2.PasswordVersion != 2 {
		t.Fatalf("versions %d and %d, want 2 and 2", s1.PasswordVersion, s2.PasswordVersion)
	}
	onB.fails(protocol.TypeChangePassword, "change-1", change("alice", next, b.secret("Other-New-Pass-2"), ""), protocol.CodeIdempotencyReuse)

	// The same request on both replicas at the same moment (the agent
	// retried elsewhere while the first was still running).
	onA = a.connect(dev, 0)
	cur := next
	for round := range 4 {
		nw := fmt.Sprintf("Race-New-Pass-%d", round)
		a.secret(nw)
		b.secret(nw)
		req := change("alice", cur, nw, "")
		key := fmt.Sprintf("race-%d", round)
		var res [2]*protocol.Envelope
		var wg sync.WaitGroup
		for i, ag := range []*agent{onA, onB} {
			wg.Add(1)
			go func() { defer wg.Done(); res[i] = ag.call(protocol.TypeChangePassword, key, req) }()
		}
		wg.Wait()
		if res[0].Error != nil || res[1].Error != nil {
			t.Fatalf("round %d: results %v and %v, want one outcome: success", round, res[0].Error, res[1].Error)
		}
		s1, s2 := decodeAs[protocol.AccountState](t, res[0]), decodeAs[protocol.AccountState](t, res[1])
		want := int64(3 + round)
		if s1.PasswordVersion != want || s2.PasswordVersion != want {
			t.Fatalf("round %d: versions %d and %d, want %d (applied once)", round, s1.PasswordVersion, s2.PasswordVersion, want)
		}
		cur = nw
	}
}

// TestReplicaPolicy: a policy set through A is what B enforces and
// announces, and B's agents get the policy_changed push.
func TestReplicaPolicy(t *testing.T) {
	rs := replicas(t, 2)
	a, b := rs[0], rs[1]
	ag := b.connect(a.enroll(), 0)
	pol := a.srv.Policy()
	pol.MinLength = 21
	if _, err := a.adm.SetPolicy(t.Context(), pol); err != nil {
		t.Fatal(err)
	}
	p := ag.push()
	if got := decodeAs[protocol.PolicyChanged](t, p); p.Type != protocol.TypePolicyChanged || got.Policy.MinLength != 21 {
		t.Fatalf("push %s %+v", p.Type, got)
	}
	waitFor(t, "B to reload the policy", func() bool { return b.srv.Policy().MinLength == 21 })
	var got protocol.Policy
	ag.ok(protocol.TypeGetPolicy, "", nil, &got)
	if got.MinLength != 21 {
		t.Fatalf("B serves min length %d", got.MinLength)
	}
}

// TestReplicaMasterKey: a replica with another master key, or none while
// the database has one, refuses to start.
func TestReplicaMasterKey(t *testing.T) {
	rs := replicas(t, 1)
	url := rs[0].dbURL
	cfg := func(key string) Config {
		return Config{DataDir: t.TempDir(), DatabaseURL: url, MasterKeyFile: key, Argon2: testArgon2}
	}
	// No key file: it would be made afresh, which cannot match.
	missing := filepath.Join(t.TempDir(), "server.key")
	if _, err := New(cfg(missing)); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("New without the key: %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("a new key file was made")
	}
	other := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(other, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg(other)); err == nil || !strings.Contains(err.Error(), "not the key") {
		t.Fatalf("New with another key: %v", err)
	}
	// Copying the key file into a new replica's data directory works.
	dir := t.TempDir()
	b, err := os.ReadFile(rs[0].srv.cfg.MasterKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ServerKeyFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{DataDir: dir, DatabaseURL: url, Argon2: testArgon2})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyReloadKeepsNewerSet: reloads on another replica's word run
// while policies are set here; once a set has answered, no reload that
// read an older snapshot may bring the older policy back.
func TestPolicyReloadKeepsNewerSet(t *testing.T) {
	e := newEnv(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := e.srv.reloadPolicy(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	pol := e.srv.Policy()
	for i := range 30 {
		pol.MinLength = 10 + i
		if _, err := e.adm.SetPolicy(t.Context(), pol); err != nil {
			t.Fatal(err)
		}
		if got := e.srv.Policy().MinLength; got != 10+i {
			close(stop)
			wg.Wait()
			t.Fatalf("after setting min length %d the server has %d", 10+i, got)
		}
	}
	close(stop)
	wg.Wait()
}

// TestReplicaRevokeDropsSocketElsewhere (issue 10, item 3): a device
// revoked through replica A while its socket is on replica B is
// disconnected by B at once with CloseRevoked, and no replica takes its
// key again.
func TestReplicaRevokeDropsSocketElsewhere(t *testing.T) {
	rs := replicas(t, 2)
	a, b := rs[0], rs[1]
	a.addUser("alice", alicePW, false)
	dev := a.enroll("alice")
	ag := b.connect(dev, 0)
	ag.bind("alice")
	if _, err := a.adm.RevokeDevice(t.Context(), dev.id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ag.done:
	case <-time.After(10 * time.Second):
		t.Fatal("replica B kept the revoked device's socket")
	}
	if !websocket.IsCloseError(ag.closeErr, protocol.CloseRevoked) {
		t.Fatalf("closed with %v, want %d", ag.closeErr, protocol.CloseRevoked)
	}
	for _, e := range rs {
		ws, hello := e.dialRaw()
		sendAuth(t, ws, dev.id, ed25519.Sign(dev.key, protocol.AuthMessage(dev.id, hello.Challenge)), 0)
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, protocol.CloseRevoked) {
			t.Fatalf("reconnecting: %v, want close %d", err, protocol.CloseRevoked)
		}
		ws.Close()
	}
}

// TestReplicaResyncDropsRevokedSocket: a replica whose change feed was
// down when a device was revoked drops the socket when the feed comes
// back (the resync checks every connected device).
func TestReplicaResyncDropsRevokedSocket(t *testing.T) {
	rs := replicas(t, 2)
	a, b := rs[0], rs[1]
	dev := a.enroll()
	ag := b.connect(dev, 0)
	// Revoke straight in the database, as if B had missed the notice.
	pgtest.Exec(t, b.dbURL, `UPDATE devices SET revoked_at = now() WHERE id = $1`, dev.id)
	pgtest.Exec(t, b.dbURL, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, store.ListenAppName)
	select {
	case <-ag.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the resync kept the revoked device's socket")
	}
	if !websocket.IsCloseError(ag.closeErr, protocol.CloseRevoked) {
		t.Fatalf("closed with %v, want %d", ag.closeErr, protocol.CloseRevoked)
	}
}
