package store

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lockstep-dev/lockstep/protocol"
)

// Postgres is the Store for several directory replicas sharing one
// PostgreSQL database.
//
// Write transactions run SERIALIZABLE and are retried, like SQLite's busy
// retry, when PostgreSQL reports a serialization failure or a deadlock, so
// every replica sees the semantics of SQLite's single writer: a device's
// push sequence is allocated by UPDATE … RETURNING on its row and is never
// handed out twice, and an idempotency record is written once or the
// transaction fails. Read transactions run REPEATABLE READ READ ONLY: one
// consistent snapshot, like a SQLite read transaction.
//
// A transaction that stored pushes or set the policy sends, inside the
// same transaction, a NOTIFY naming the devices (never a secret); other
// replicas receive it through [Postgres.Listen]. PostgreSQL delivers it
// only when the transaction commits, so a replica never hears of a push it
// cannot read, and a crash between commit and notification cannot happen.
type Postgres struct {
	pool      *pgxpool.Pool
	listenCfg *pgx.ConnConfig
	origin    string
	log       *slog.Logger
}

var _ Store = (*Postgres)(nil)

// PostgresOptions configures OpenPostgres.
type PostgresOptions struct {
	// Password, when set, replaces any password in the connection string,
	// so that the string itself can be shown (it is never logged anyway).
	Password []byte
	// Log receives the change feed's connection events; nil discards.
	Log *slog.Logger
	// MaxConns bounds the pool (default 16 unless the connection string
	// says pool_max_conns).
	MaxConns int32
}

// Channel is the LISTEN/NOTIFY channel the replicas of one database share.
const Channel = "lockstep_directory"

// Application names shown in pg_stat_activity.
const (
	AppName       = "lockstep-directory"
	ListenAppName = "lockstep-directory-listen"
)

// OpenPostgres connects to the database named by connString (a postgres://
// URL or key=value string) and migrates its schema. Errors never quote
// the connection string, which may hold a password.
func OpenPostgres(ctx context.Context, connString string, opt PostgresOptions) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// The parser's message may quote the string; say only what is wrong.
		return nil, errors.New("the PostgreSQL connection string cannot be parsed; check its syntax")
	}
	if len(opt.Password) > 0 {
		cfg.ConnConfig.Password = string(opt.Password)
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = AppName
	}
	switch {
	case opt.MaxConns > 0:
		cfg.MaxConns = opt.MaxConns
	case !strings.Contains(connString, "pool_max_conns"):
		cfg.MaxConns = 16
	}
	listenCfg := cfg.ConnConfig.Copy()
	listenCfg.RuntimeParams["application_name"] = ListenAppName
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	var id [6]byte
	if _, err := crand.Read(id[:]); err != nil {
		pool.Close()
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	p := &Postgres{pool: pool, listenCfg: listenCfg, origin: hex.EncodeToString(id[:]), log: log}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

// Close closes the pool.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

// Update implements Store: SERIALIZABLE, retried on serialization
// failures and deadlocks.
func (p *Postgres) Update(ctx context.Context, fn func(Tx) error) error {
	return p.run(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
}

// View implements Store: one consistent read-only snapshot.
func (p *Postgres) View(ctx context.Context, fn func(Tx) error) error {
	return p.run(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// Retry limits: contention on one row makes all but one writer retry, so
// allow more attempts than SQLite (whose writers queue on a lock instead).
const (
	maxAttempts  = 30
	retryBase    = 2 * time.Millisecond
	retryCeiling = 250 * time.Millisecond
)

func (p *Postgres) run(ctx context.Context, opts pgx.TxOptions, fn func(Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := p.attempt(ctx, opts, fn)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return err
		}
		// Full jitter so that the losers of one round do not collide again.
		d := min(retryCeiling, retryBase<<min(attempt, 16))
		t := time.NewTimer(rand.N(d) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (p *Postgres) attempt(ctx context.Context, opts pgx.TxOptions, fn func(Tx) error) error {
	tx, err := p.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	rollback := func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }
	t := &pgTx{tx: tx}
	ferr := fn(t)
	switch {
	case t.err != nil && retryable(t.err):
		// Whatever fn made of it, the transaction lost a race: run again.
		rollback()
		return t.err
	case ferr != nil:
		rollback()
		return ferr
	case t.err != nil:
		// fn went on after a database error; PostgreSQL has aborted the
		// transaction, so it cannot commit.
		rollback()
		return fmt.Errorf("transaction aborted by an earlier error: %w", t.err)
	}
	for _, payload := range t.payloads(p.origin) {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, payload); err != nil {
			rollback()
			return fmt.Errorf("notifying replicas: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		rollback()
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

// retryable reports a failure that running the transaction again can
// cure: a serialization failure, a deadlock, or a connection failure
// before anything was sent.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return pgconn.SafeToRetry(err)
}

// The schema, one entry per version. Entries are never edited once
// released: a change is a new entry.
var pgMigrations = []string{
	// 1: the SQLite schema in PostgreSQL types. Times are timestamptz
	// (microseconds); a zero time is NULL where it means "never" and the
	// year-1 zero time elsewhere. "user" is reserved, hence user_name.
	`CREATE TABLE users (
	name text PRIMARY KEY,
	display_name text NOT NULL DEFAULT '',
	password_hash text NOT NULL,
	password_version bigint NOT NULL,
	password_changed_at timestamptz NOT NULL,
	must_change boolean NOT NULL DEFAULT false,
	failed_count integer NOT NULL DEFAULT 0,
	failed_window_start timestamptz,
	locked_until timestamptz,
	totp_secret bytea,
	totp_last_step bigint NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL
);
CREATE INDEX users_changed ON users (password_changed_at);
CREATE TABLE password_history (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_name text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	hash text NOT NULL,
	set_at timestamptz NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_name, id);
CREATE TABLE devices (
	id text PRIMARY KEY,
	hostname text NOT NULL,
	public_key bytea NOT NULL,
	created_at timestamptz NOT NULL,
	last_seen_at timestamptz,
	last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);
CREATE TABLE bindings (
	device_id text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	user_name text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	local_name text NOT NULL,
	synced_version bigint NOT NULL DEFAULT 0,
	synced_at timestamptz,
	bound_at timestamptz NOT NULL,
	expiry_warned_at timestamptz,
	PRIMARY KEY (device_id, user_name)
);
CREATE INDEX bindings_user ON bindings (user_name);
CREATE TABLE outbox (
	device_id text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	seq bigint NOT NULL,
	type text NOT NULL,
	body bytea NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (device_id, seq)
);
CREATE TABLE enroll_tokens (
	hash bytea PRIMARY KEY,
	note text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at timestamptz,
	device_id text NOT NULL DEFAULT ''
);
CREATE TABLE idempotency (
	device_id text NOT NULL,
	key text NOT NULL,
	fingerprint bytea NOT NULL,
	outcome bytea NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (device_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);
CREATE TABLE settings (
	name text PRIMARY KEY,
	value bytea NOT NULL
);
CREATE TABLE audit (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at timestamptz NOT NULL,
	event text NOT NULL,
	actor text NOT NULL DEFAULT '',
	user_name text NOT NULL DEFAULT '',
	device text NOT NULL DEFAULT '',
	source text NOT NULL DEFAULT '',
	detail jsonb
);
CREATE INDEX audit_user ON audit (user_name, at);
CREATE INDEX audit_at ON audit (at);`,
	// 2: separate second-factor and linking failure counts, device notes,
	// addresses and revocation, how a binding was made, the users an
	// enrollment token binds, and an index for the per-device idempotency
	// cap.
	`ALTER TABLE users ADD COLUMN mfa_failed_count integer NOT NULL DEFAULT 0,
	ADD COLUMN mfa_failed_window_start timestamptz,
	ADD COLUMN link_failed_count integer NOT NULL DEFAULT 0,
	ADD COLUMN link_failed_window_start timestamptz,
	ADD COLUMN link_locked_until timestamptz;
ALTER TABLE devices ADD COLUMN note text NOT NULL DEFAULT '',
	ADD COLUMN last_addr text NOT NULL DEFAULT '',
	ADD COLUMN revoked_at timestamptz;
ALTER TABLE bindings ADD COLUMN bound_by text NOT NULL DEFAULT 'legacy';
ALTER TABLE enroll_tokens ADD COLUMN users text[] NOT NULL DEFAULT '{}';
CREATE INDEX idempotency_device ON idempotency (device_id, created_at);`,
	pgSchemaV3,
	pgSchemaV4,
	pgSchemaConsoleV1,
}

// migrateLock is the advisory lock key held while migrating ("lockstep").
const migrateLock = 0x6c6f636b73746570

// migrate applies the schema versions the database lacks, each in its own
// transaction, under a session advisory lock so that replicas starting at
// once migrate one after the other.
func (p *Postgres) migrate(ctx context.Context) error {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLock)); err != nil {
		return fmt.Errorf("locking for migration: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLock)); err != nil {
			// Closing the session releases the lock.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version integer PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return fmt.Errorf("migrating schema: %w", err)
	}
	var cur int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if cur > len(pgMigrations) {
		return fmt.Errorf("the database schema is version %d, newer than this lockstep-directory knows (%d): upgrade it", cur, len(pgMigrations))
	}
	for v := cur + 1; v <= len(pgMigrations); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, pgMigrations[v-1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", v, err)
		}
		p.log.Info("postgres schema migrated", "version", v)
	}
	return nil
}

// pgTx is one PostgreSQL transaction. It remembers the first database
// error (after which PostgreSQL refuses every statement until rollback)
// and what to announce to other replicas on commit.
type pgTx struct {
	tx      pgx.Tx
	err     error
	devices []string
	seen    map[string]struct{}
	policy  bool
	revoked []string
}

// fail records a database error and returns it wrapped with what.
func (t *pgTx) fail(err error, what string) error {
	if t.err == nil && !errors.Is(err, pgx.ErrNoRows) {
		t.err = err
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (t *pgTx) pgNotFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return t.fail(err, "reading "+what)
}

func (t *pgTx) pgAffected(tag pgconn.CommandTag, err error, what string) error {
	if err != nil {
		return t.fail(err, what)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// notification is a NOTIFY payload: the origin (so a replica can skip its
// own), device ids, and flags. Never a secret.
type notification struct {
	Origin  string   `json:"o"`
	Devices []string `json:"d,omitempty"`
	All     bool     `json:"a,omitempty"`
	Policy  bool     `json:"p,omitempty"`
	Revoked []string `json:"r,omitempty"`
}

// NOTIFY payloads must stay under 8000 bytes; beyond maxListed devices a
// single "all devices" notification is cheaper than many lists.
const (
	maxPayload = 7000
	maxListed  = 4000
)

func (t *pgTx) payloads(origin string) []string {
	if len(t.devices) == 0 && !t.policy && len(t.revoked) == 0 {
		return nil
	}
	var out []string
	// Revocations are few (an administrator's commands): one payload each
	// batch, ahead of the push lists.
	for len(t.revoked) > 0 {
		n := notification{Origin: origin}
		size := 64 + len(origin)
		for len(t.revoked) > 0 && (len(n.Revoked) == 0 || size+len(t.revoked[0])+3 <= maxPayload) {
			size += len(t.revoked[0]) + 3
			n.Revoked = append(n.Revoked, t.revoked[0])
			t.revoked = t.revoked[1:]
		}
		b, _ := json.Marshal(n)
		out = append(out, string(b))
	}
	if len(t.devices) == 0 && !t.policy {
		return out
	}
	if len(t.devices) > maxListed {
		b, _ := json.Marshal(notification{Origin: origin, All: true, Policy: t.policy})
		return append(out, string(b))
	}
	n := notification{Origin: origin, Policy: t.policy}
	size := 64 + len(origin)
	for _, d := range t.devices {
		if size+len(d)+3 > maxPayload && len(n.Devices) > 0 {
			b, _ := json.Marshal(n)
			out = append(out, string(b))
			n = notification{Origin: origin}
			size = 64 + len(origin)
		}
		n.Devices = append(n.Devices, d)
		size += len(d) + 3
	}
	b, _ := json.Marshal(n)
	return append(out, string(b))
}

// Listen calls fn, on one goroutine, for each change other replicas
// commit, until ctx ends. It keeps a dedicated connection LISTENing and
// reconnects with backoff when it drops; each time it is listening again
// it first calls fn with Change{Resync: true}, because anything committed
// while it was not listening was not heard. Changes this Postgres made
// itself are not reported: its caller delivered them already.
func (p *Postgres) Listen(ctx context.Context, fn func(Change)) {
	const minDelay, maxDelay = 100 * time.Millisecond, 10 * time.Second
	delay := minDelay
	for {
		err := p.listen(ctx, fn, func() { delay = minDelay })
		if ctx.Err() != nil {
			return
		}
		wait := delay/2 + rand.N(delay/2+1)
		p.log.Warn("postgres change feed lost", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(maxDelay, 2*delay)
	}
}

// listenIdle is how long the feed waits for a notification before it
// checks, with a ping, that its connection is alive.
const listenIdle = 30 * time.Second

func (p *Postgres) listen(ctx context.Context, fn func(Change), connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, p.listenCfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+Channel); err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	connected()
	p.log.Info("postgres change feed listening", "channel", Channel)
	fn(Change{Resync: true})
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !pgconn.Timeout(err) {
				return err
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			continue
		}
		var m notification
		if err := json.Unmarshal([]byte(n.Payload), &m); err != nil {
			p.log.Warn("postgres notification unreadable", "err", err)
			fn(Change{Resync: true})
			continue
		}
		if m.Origin == p.origin {
			continue
		}
		fn(Change{Devices: m.Devices, AllDevices: m.All, Policy: m.Policy, Revoked: m.Revoked})
	}
}

// Times: PostgreSQL keeps microseconds, so round down here rather than
// let the server round to nearest; nullable columns map the zero time to
// NULL.
func pgTime(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

func pgNullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return pgTime(t)
}

func fromPG(t pgtype.Timestamptz) time.Time {
	if !t.Valid || t.Time.IsZero() {
		return time.Time{}
	}
	return t.Time.UTC()
}

const pgUserCols = `name, display_name, password_hash, password_version, password_changed_at, must_change,
	failed_count, failed_window_start, locked_until, totp_secret, totp_last_step, created_at,
	mfa_failed_count, mfa_failed_window_start, link_failed_count, link_failed_window_start, link_locked_until,
	email, mfa_enroll_until, totp_pending, totp_pending_at`

func scanPGUser(r pgx.Row) (User, error) {
	var u User
	var changed, window, locked, created, mfaWindow, linkWindow, linkLocked, enrollUntil, pendingAt pgtype.Timestamptz
	err := r.Scan(&u.Name, &u.DisplayName, &u.PasswordHash, &u.PasswordVersion, &changed, &u.MustChange,
		&u.FailedCount, &window, &locked, &u.TOTPSecret, &u.TOTPLastStep, &created,
		&u.MFAFailedCount, &mfaWindow, &u.LinkFailedCount, &linkWindow, &linkLocked,
		&u.Email, &enrollUntil, &u.TOTPPending, &pendingAt)
	u.PasswordChangedAt, u.FailedWindowStart, u.LockedUntil, u.CreatedAt = fromPG(changed), fromPG(window), fromPG(locked), fromPG(created)
	u.MFAFailedWindowStart, u.LinkFailedWindowStart, u.LinkLockedUntil = fromPG(mfaWindow), fromPG(linkWindow), fromPG(linkLocked)
	u.MFAEnrollUntil, u.TOTPPendingAt = fromPG(enrollUntil), fromPG(pendingAt)
	return u, err
}

func (t *pgTx) User(ctx context.Context, name string) (User, error) {
	u, err := scanPGUser(t.tx.QueryRow(ctx, `SELECT `+pgUserCols+` FROM users WHERE name = $1`, name))
	if err != nil {
		return User{}, t.pgNotFound(err, "user "+name)
	}
	return u, nil
}

func (t *pgTx) users(ctx context.Context, q string, args ...any) ([]User, error) {
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, t.fail(err, "listing users")
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanPGUser(rows)
		if err != nil {
			return nil, t.fail(err, "listing users")
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err, "listing users")
	}
	return out, nil
}

func (t *pgTx) Users(ctx context.Context) ([]User, error) {
	return t.users(ctx, `SELECT `+pgUserCols+` FROM users ORDER BY name`)
}

func (t *pgTx) UsersChangedBefore(ctx context.Context, before time.Time) ([]User, error) {
	return t.users(ctx, `SELECT `+pgUserCols+` FROM users WHERE password_changed_at < $1 ORDER BY name`, pgTime(before))
}

func (t *pgTx) CreateUser(ctx context.Context, u User) error {
	tag, err := t.tx.Exec(ctx, `INSERT INTO users (`+pgUserCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,
		$18,$19,$20,$21) ON CONFLICT (name) DO NOTHING`,
		u.Name, u.DisplayName, u.PasswordHash, u.PasswordVersion, pgTime(u.PasswordChangedAt), u.MustChange,
		u.FailedCount, pgNullTime(u.FailedWindowStart), pgNullTime(u.LockedUntil), u.TOTPSecret, u.TOTPLastStep, pgTime(u.CreatedAt),
		u.MFAFailedCount, pgNullTime(u.MFAFailedWindowStart), u.LinkFailedCount, pgNullTime(u.LinkFailedWindowStart), pgNullTime(u.LinkLockedUntil),
		NormalizeEmail(u.Email), pgNullTime(u.MFAEnrollUntil), u.TOTPPending, pgNullTime(u.TOTPPendingAt))
	if err != nil {
		return t.fail(err, "creating user "+u.Name)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %s: %w", u.Name, ErrExists)
	}
	return nil
}

func (t *pgTx) UpdateUser(ctx context.Context, u User) error {
	tag, err := t.tx.Exec(ctx, `UPDATE users SET display_name=$1, password_hash=$2, password_version=$3,
		password_changed_at=$4, must_change=$5, failed_count=$6, failed_window_start=$7, locked_until=$8,
		totp_secret=$9, totp_last_step=$10, mfa_failed_count=$11, mfa_failed_window_start=$12,
		link_failed_count=$13, link_failed_window_start=$14, link_locked_until=$15,
		email=$16, mfa_enroll_until=$17, totp_pending=$18, totp_pending_at=$19 WHERE name=$20`,
		u.DisplayName, u.PasswordHash, u.PasswordVersion, pgTime(u.PasswordChangedAt), u.MustChange, u.FailedCount,
		pgNullTime(u.FailedWindowStart), pgNullTime(u.LockedUntil), u.TOTPSecret, u.TOTPLastStep,
		u.MFAFailedCount, pgNullTime(u.MFAFailedWindowStart), u.LinkFailedCount, pgNullTime(u.LinkFailedWindowStart),
		pgNullTime(u.LinkLockedUntil), NormalizeEmail(u.Email), pgNullTime(u.MFAEnrollUntil), u.TOTPPending, pgNullTime(u.TOTPPendingAt), u.Name)
	return t.pgAffected(tag, err, "updating user "+u.Name)
}

func (t *pgTx) DeleteUser(ctx context.Context, name string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM users WHERE name=$1`, name)
	return t.pgAffected(tag, err, "deleting user "+name)
}

func (t *pgTx) PasswordHistory(ctx context.Context, user string, n int) ([]string, error) {
	rows, err := t.tx.Query(ctx, `SELECT hash FROM password_history WHERE user_name=$1 ORDER BY id DESC LIMIT $2`, user, n)
	if err != nil {
		return nil, t.fail(err, "reading password history")
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, t.fail(err, "reading password history")
	}
	return out, nil
}

func (t *pgTx) AddPasswordHistory(ctx context.Context, user, hash string, at time.Time, keep int) error {
	if _, err := t.tx.Exec(ctx, `INSERT INTO password_history (user_name, hash, set_at) VALUES ($1,$2,$3)`, user, hash, pgTime(at)); err != nil {
		return t.fail(err, "adding password history")
	}
	_, err := t.tx.Exec(ctx, `DELETE FROM password_history WHERE user_name=$1 AND id NOT IN
		(SELECT id FROM password_history WHERE user_name=$1 ORDER BY id DESC LIMIT $2)`, user, keep)
	if err != nil {
		return t.fail(err, "pruning password history")
	}
	return nil
}

const pgDeviceCols = `id, hostname, public_key, created_at, last_seen_at, last_seq, note, last_addr, revoked_at`

func scanPGDevice(r pgx.Row) (Device, error) {
	var d Device
	var created, seen, revoked pgtype.Timestamptz
	var seq int64
	err := r.Scan(&d.ID, &d.Hostname, &d.PublicKey, &created, &seen, &seq, &d.Note, &d.LastAddr, &revoked)
	d.CreatedAt, d.LastSeenAt, d.LastSeq, d.RevokedAt = fromPG(created), fromPG(seen), uint64(seq), fromPG(revoked)
	return d, err
}

func (t *pgTx) Device(ctx context.Context, id string) (Device, error) {
	d, err := scanPGDevice(t.tx.QueryRow(ctx, `SELECT `+pgDeviceCols+` FROM devices WHERE id=$1`, id))
	if err != nil {
		return Device{}, t.pgNotFound(err, "device "+id)
	}
	return d, nil
}

func (t *pgTx) Devices(ctx context.Context) ([]Device, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+pgDeviceCols+` FROM devices ORDER BY id`)
	if err != nil {
		return nil, t.fail(err, "listing devices")
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d, err := scanPGDevice(rows)
		if err != nil {
			return nil, t.fail(err, "listing devices")
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err, "listing devices")
	}
	return out, nil
}

func (t *pgTx) CreateDevice(ctx context.Context, d Device) error {
	tag, err := t.tx.Exec(ctx, `INSERT INTO devices (`+pgDeviceCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO NOTHING`,
		d.ID, d.Hostname, d.PublicKey, pgTime(d.CreatedAt), pgNullTime(d.LastSeenAt), int64(d.LastSeq), d.Note, d.LastAddr,
		pgNullTime(d.RevokedAt))
	if err != nil {
		return t.fail(err, "creating device")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("device %s: %w", d.ID, ErrExists)
	}
	return nil
}

func (t *pgTx) TouchDevice(ctx context.Context, id string, at time.Time, addr string) error {
	tag, err := t.tx.Exec(ctx, `UPDATE devices SET last_seen_at=$1, last_addr=$2 WHERE id=$3`, pgTime(at), addr, id)
	return t.pgAffected(tag, err, "touching device "+id)
}

// RevokeDevice also announces the revocation to the other replicas, so
// that the one holding the device's socket drops it.
func (t *pgTx) RevokeDevice(ctx context.Context, id string, at time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE devices SET revoked_at=$1 WHERE id=$2`, pgTime(at), id)
	if err := t.pgAffected(tag, err, "revoking device "+id); err != nil {
		return err
	}
	if _, err := t.tx.Exec(ctx, `DELETE FROM bindings WHERE device_id=$1`, id); err != nil {
		return t.fail(err, "revoking device "+id)
	}
	if _, err := t.tx.Exec(ctx, `DELETE FROM outbox WHERE device_id=$1`, id); err != nil {
		return t.fail(err, "revoking device "+id)
	}
	t.revoked = append(t.revoked, id)
	return nil
}

func (t *pgTx) RevokedDevices(ctx context.Context) ([]string, error) {
	rows, err := t.tx.Query(ctx, `SELECT id FROM devices WHERE revoked_at IS NOT NULL ORDER BY id`)
	if err != nil {
		return nil, t.fail(err, "listing revoked devices")
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, t.fail(err, "listing revoked devices")
	}
	return out, nil
}

const pgBindingCols = `device_id, user_name, local_name, synced_version, synced_at, bound_at, expiry_warned_at, bound_by`

func scanPGBinding(r pgx.Row) (Binding, error) {
	var b Binding
	var synced, bound, warned pgtype.Timestamptz
	err := r.Scan(&b.DeviceID, &b.User, &b.LocalName, &b.SyncedVersion, &synced, &bound, &warned, &b.BoundBy)
	b.SyncedAt, b.BoundAt, b.ExpiryWarnedAt = fromPG(synced), fromPG(bound), fromPG(warned)
	return b, err
}

func (t *pgTx) Bind(ctx context.Context, b Binding) error {
	if b.BoundBy == "" {
		b.BoundBy = BoundByLegacy
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO bindings (device_id, user_name, local_name, bound_at, bound_by) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (device_id, user_name) DO UPDATE SET local_name=excluded.local_name`,
		b.DeviceID, b.User, b.LocalName, pgTime(b.BoundAt), b.BoundBy)
	if err != nil {
		return t.fail(err, fmt.Sprintf("binding %s to %s", b.User, b.DeviceID))
	}
	return nil
}

func (t *pgTx) Unbind(ctx context.Context, deviceID, user string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM bindings WHERE device_id=$1 AND user_name=$2`, deviceID, user)
	return t.pgAffected(tag, err, "unbinding")
}

func (t *pgTx) DeviceBindings(ctx context.Context, deviceID string) ([]Binding, error) {
	return t.bindings(ctx, `SELECT `+pgBindingCols+` FROM bindings WHERE device_id=$1 ORDER BY user_name`, deviceID)
}

func (t *pgTx) Bindings(ctx context.Context) ([]Binding, error) {
	return t.bindings(ctx, `SELECT `+pgBindingCols+` FROM bindings ORDER BY device_id, user_name`)
}

func (t *pgTx) Binding(ctx context.Context, deviceID, user string) (Binding, error) {
	b, err := scanPGBinding(t.tx.QueryRow(ctx, `SELECT `+pgBindingCols+` FROM bindings WHERE device_id=$1 AND user_name=$2`, deviceID, user))
	if err != nil {
		return Binding{}, t.pgNotFound(err, "binding")
	}
	return b, nil
}

func (t *pgTx) UserBindings(ctx context.Context, user string) ([]Binding, error) {
	return t.bindings(ctx, `SELECT `+pgBindingCols+` FROM bindings WHERE user_name=$1 ORDER BY device_id`, user)
}

func (t *pgTx) bindings(ctx context.Context, q string, args ...any) ([]Binding, error) {
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, t.fail(err, "listing bindings")
	}
	defer rows.Close()
	var out []Binding
	for rows.Next() {
		b, err := scanPGBinding(rows)
		if err != nil {
			return nil, t.fail(err, "listing bindings")
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err, "listing bindings")
	}
	return out, nil
}

func (t *pgTx) SetSyncedVersion(ctx context.Context, deviceID, user string, version int64, at time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE bindings SET synced_version=$1, synced_at=$2 WHERE device_id=$3 AND user_name=$4`,
		version, pgNullTime(at), deviceID, user)
	return t.pgAffected(tag, err, "recording sync")
}

func (t *pgTx) SetExpiryWarned(ctx context.Context, deviceID, user string, at time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE bindings SET expiry_warned_at=$1 WHERE device_id=$2 AND user_name=$3`, pgNullTime(at), deviceID, user)
	return t.pgAffected(tag, err, "recording expiry warning")
}

// AppendPush allocates the device's next sequence number with UPDATE …
// RETURNING: the row lock it takes makes a concurrent writer (on this
// replica or another) wait and then fail serialization and retry, so no
// number is handed out twice and none is skipped by a committed push.
func (t *pgTx) AppendPush(ctx context.Context, deviceID, typ string, body []byte, at time.Time) (uint64, error) {
	if body == nil {
		body = []byte{}
	}
	var seq int64
	err := t.tx.QueryRow(ctx, `UPDATE devices SET last_seq = last_seq + 1 WHERE id=$1 RETURNING last_seq`, deviceID).Scan(&seq)
	if err != nil {
		return 0, t.pgNotFound(err, "device "+deviceID)
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO outbox (device_id, seq, type, body, created_at) VALUES ($1,$2,$3,$4,$5)`,
		deviceID, seq, typ, body, pgTime(at)); err != nil {
		return 0, t.fail(err, "storing push")
	}
	if t.seen == nil {
		t.seen = make(map[string]struct{})
	}
	if _, ok := t.seen[deviceID]; !ok {
		t.seen[deviceID] = struct{}{}
		t.devices = append(t.devices, deviceID)
	}
	return uint64(seq), nil
}

func (t *pgTx) Pushes(ctx context.Context, deviceID string, after uint64) ([]Push, error) {
	if after > 1<<63-1 {
		return nil, nil
	}
	rows, err := t.tx.Query(ctx, `SELECT seq, type, body, created_at FROM outbox WHERE device_id=$1 AND seq>$2 ORDER BY seq`, deviceID, int64(after))
	if err != nil {
		return nil, t.fail(err, "reading outbox")
	}
	defer rows.Close()
	var out []Push
	for rows.Next() {
		p := Push{DeviceID: deviceID}
		var seq int64
		var created pgtype.Timestamptz
		if err := rows.Scan(&seq, &p.Type, &p.Body, &created); err != nil {
			return nil, t.fail(err, "reading outbox")
		}
		p.Seq, p.CreatedAt = uint64(seq), fromPG(created)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err, "reading outbox")
	}
	return out, nil
}

func (t *pgTx) AckPushes(ctx context.Context, deviceID string, seq uint64) error {
	if seq > 1<<63-1 {
		seq = 1<<63 - 1
	}
	if _, err := t.tx.Exec(ctx, `DELETE FROM outbox WHERE device_id=$1 AND seq<=$2`, deviceID, int64(seq)); err != nil {
		return t.fail(err, "pruning outbox")
	}
	return nil
}

func (t *pgTx) CreateEnrollToken(ctx context.Context, e EnrollToken) error {
	users := e.Users
	if users == nil {
		users = []string{}
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO enroll_tokens (hash, note, created_at, expires_at, users) VALUES ($1,$2,$3,$4,$5)`,
		e.Hash, e.Note, pgTime(e.CreatedAt), pgTime(e.ExpiresAt), users)
	if err != nil {
		return t.fail(err, "creating enrollment token")
	}
	return nil
}

func (t *pgTx) EnrollToken(ctx context.Context, hash []byte) (EnrollToken, error) {
	e := EnrollToken{Hash: hash}
	var created, expires, used pgtype.Timestamptz
	err := t.tx.QueryRow(ctx, `SELECT note, created_at, expires_at, used_at, device_id, users FROM enroll_tokens WHERE hash=$1`, hash).
		Scan(&e.Note, &created, &expires, &used, &e.DeviceID, &e.Users)
	if err != nil {
		return EnrollToken{}, t.pgNotFound(err, "enrollment token")
	}
	if len(e.Users) == 0 {
		e.Users = nil
	}
	e.CreatedAt, e.ExpiresAt, e.UsedAt = fromPG(created), fromPG(expires), fromPG(used)
	return e, nil
}

func (t *pgTx) UseEnrollToken(ctx context.Context, hash []byte, deviceID string, at time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE enroll_tokens SET used_at=$1, device_id=$2 WHERE hash=$3 AND used_at IS NULL`, pgTime(at), deviceID, hash)
	return t.pgAffected(tag, err, "using enrollment token")
}

func (t *pgTx) Idempotency(ctx context.Context, deviceID, key string) (IdempotencyRecord, error) {
	r := IdempotencyRecord{DeviceID: deviceID, Key: key}
	var created pgtype.Timestamptz
	err := t.tx.QueryRow(ctx, `SELECT fingerprint, outcome, created_at FROM idempotency WHERE device_id=$1 AND key=$2`, deviceID, key).
		Scan(&r.Fingerprint, &r.Outcome, &created)
	if err != nil {
		return IdempotencyRecord{}, t.pgNotFound(err, "idempotency record")
	}
	r.CreatedAt = fromPG(created)
	return r, nil
}

// PutIdempotency inserts once; a record another transaction committed
// first (on any replica) makes it ErrExists without aborting this one.
func (t *pgTx) PutIdempotency(ctx context.Context, r IdempotencyRecord, keep int) error {
	tag, err := t.tx.Exec(ctx, `INSERT INTO idempotency (device_id, key, fingerprint, outcome, created_at) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (device_id, key) DO NOTHING`,
		r.DeviceID, r.Key, r.Fingerprint, r.Outcome, pgTime(r.CreatedAt))
	if err != nil {
		return t.fail(err, "storing idempotency record")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("idempotency record: %w", ErrExists)
	}
	_, err = t.tx.Exec(ctx, `DELETE FROM idempotency WHERE device_id=$1 AND key NOT IN
		(SELECT key FROM idempotency WHERE device_id=$1 ORDER BY created_at DESC, key DESC LIMIT $2)`, r.DeviceID, keep)
	if err != nil {
		return t.fail(err, "pruning idempotency records")
	}
	return nil
}

func (t *pgTx) PruneIdempotency(ctx context.Context, before time.Time) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM idempotency WHERE created_at < $1`, pgTime(before)); err != nil {
		return t.fail(err, "pruning idempotency records")
	}
	return nil
}

func (t *pgTx) Policy(ctx context.Context) (protocol.Policy, error) {
	var b []byte
	if err := t.tx.QueryRow(ctx, `SELECT value FROM settings WHERE name='policy'`).Scan(&b); err != nil {
		return protocol.Policy{}, t.pgNotFound(err, "policy")
	}
	var p protocol.Policy
	if err := json.Unmarshal(b, &p); err != nil {
		return protocol.Policy{}, fmt.Errorf("decoding stored policy: %w", err)
	}
	return p, nil
}

func (t *pgTx) SetPolicy(ctx context.Context, p protocol.Policy) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding policy: %w", err)
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ('policy', $1)
		ON CONFLICT (name) DO UPDATE SET value=excluded.value`, b); err != nil {
		return t.fail(err, "storing policy")
	}
	t.policy = true
	return nil
}

func (t *pgTx) Setting(ctx context.Context, name string) ([]byte, error) {
	var b []byte
	if err := t.tx.QueryRow(ctx, `SELECT value FROM settings WHERE name=$1`, name).Scan(&b); err != nil {
		return nil, t.pgNotFound(err, "setting "+name)
	}
	return b, nil
}

func (t *pgTx) PutSetting(ctx context.Context, name string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value=excluded.value`, name, value); err != nil {
		return t.fail(err, "storing setting "+name)
	}
	if strings.HasPrefix(name, PolicySettingPrefix) {
		t.policy = true // replicas reload their policy
	}
	return nil
}

func (t *pgTx) CreateSetting(ctx context.Context, name string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value)
	if err != nil {
		return t.fail(err, "storing setting "+name)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("setting %s: %w", name, ErrExists)
	}
	return nil
}

func (t *pgTx) Audit(ctx context.Context, e AuditEvent) error {
	var detail []byte
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("encoding audit detail: %w", err)
		}
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO audit (at, event, actor, user_name, device, source, detail) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		pgTime(e.At), e.Event, e.Actor, e.User, e.Device, e.Source, jsonOrNull(detail))
	if err != nil {
		return t.fail(err, "writing audit event")
	}
	return nil
}

// jsonOrNull passes JSON text to a jsonb parameter, or NULL when empty.
func jsonOrNull(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func (t *pgTx) PruneAudit(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 ORDER BY id LIMIT $2)`, pgTime(before), limit)
	if err != nil {
		return 0, t.fail(err, "pruning audit log")
	}
	return int(tag.RowsAffected()), nil
}

func (t *pgTx) AuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	q := `SELECT id, at, event, actor, user_name, device, source, detail::text FROM audit WHERE at >= $1`
	args := []any{pgTime(f.Since)}
	for _, c := range []struct {
		col string
		v   any
		set bool
	}{{"user_name =", f.User, f.User != ""}, {"actor =", f.Actor, f.Actor != ""}, {"event =", f.Event, f.Event != ""},
		{"at <", pgTime(f.Until), !f.Until.IsZero()}} {
		if c.set {
			args = append(args, c.v)
			q += fmt.Sprintf(` AND %s $%d`, c.col, len(args))
		}
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args)+1)
	args = append(args, limit)
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, t.fail(err, "reading audit log")
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at pgtype.Timestamptz
		var detail *string
		if err := rows.Scan(&e.ID, &at, &e.Event, &e.Actor, &e.User, &e.Device, &e.Source, &detail); err != nil {
			return nil, t.fail(err, "reading audit log")
		}
		e.At = fromPG(at)
		if detail != nil && *detail != "" {
			if err := json.Unmarshal([]byte(*detail), &e.Detail); err != nil {
				return nil, fmt.Errorf("decoding audit detail: %w", err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err, "reading audit log")
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
