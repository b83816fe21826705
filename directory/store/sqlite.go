package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/protocol"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite is the embedded Store: one database file in WAL mode. Writes go
// through a single connection that begins IMMEDIATE transactions (so a
// transaction never fails half-way on a lock upgrade); reads use a pool of
// read-only connections that run beside the writer.
type SQLite struct {
	w, r *sql.DB
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the database at path and migrates
// its schema.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	dsn := func(extra string) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		// FULL: a commit the directory acknowledged survives power loss.
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "foreign_keys(1)")
		return "file:" + path + "?" + q.Encode() + extra
	}
	w, err := sql.Open("sqlite", dsn("&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	s := &SQLite{w: w}
	if err := s.check(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn("&_pragma=query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)*2))
	s.r = r
	return s, nil
}

// check runs SQLite's quick_check, so that a damaged file is refused at
// start rather than failing requests one by one.
func (s *SQLite) check(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return fmt.Errorf("the database is damaged or not a database (%w): restore it from a backup", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return fmt.Errorf("checking the database: %w", err)
		}
		if p != "ok" && len(problems) < 5 {
			problems = append(problems, p)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("the database is damaged (%w): restore it from a backup", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("the database is damaged (quick_check: %s): restore it from a backup", strings.Join(problems, "; "))
	}
	return nil
}

// Close closes both pools; the last close checkpoints the WAL.
func (s *SQLite) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// Update implements Store.
func (s *SQLite) Update(ctx context.Context, fn func(Tx) error) error {
	return s.run(ctx, s.w, false, fn)
}

// View implements Store.
func (s *SQLite) View(ctx context.Context, fn func(Tx) error) error {
	return s.run(ctx, s.r, true, fn)
}

func (s *SQLite) run(ctx context.Context, db *sql.DB, ro bool, fn func(Tx) error) error {
	for attempt := 0; ; attempt++ {
		tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: ro})
		if err != nil {
			if busy(err) && attempt < 5 {
				continue
			}
			return fmt.Errorf("beginning transaction: %w", err)
		}
		if err := fn(&sqliteTx{tx: tx}); err != nil {
			_ = tx.Rollback()
			if busy(err) && attempt < 5 {
				continue
			}
			return err
		}
		if err := tx.Commit(); err != nil {
			if busy(err) && attempt < 5 {
				continue
			}
			return fmt.Errorf("committing: %w", err)
		}
		return nil
	}
}

func busy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

func constraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// sqliteMigrations are the schema versions, recorded in PRAGMA
// user_version. Entries are never edited once released: a change is a new
// entry. The first is idempotent, so a database made before versions were
// recorded (user_version 0) passes through it unchanged.
var sqliteMigrations = []string{schemaV1, schemaV2, schemaV3, schemaV4, schemaConsoleV1}

const schemaV1 = `
CREATE TABLE IF NOT EXISTS users (
	name TEXT PRIMARY KEY,
	display_name TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL,
	password_version INTEGER NOT NULL,
	password_changed_at INTEGER NOT NULL,
	must_change INTEGER NOT NULL DEFAULT 0,
	failed_count INTEGER NOT NULL DEFAULT 0,
	failed_window_start INTEGER NOT NULL DEFAULT 0,
	locked_until INTEGER NOT NULL DEFAULT 0,
	totp_secret BLOB,
	totp_last_step INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS users_changed ON users(password_changed_at);
CREATE TABLE IF NOT EXISTS password_history (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	hash TEXT NOT NULL,
	set_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS password_history_user ON password_history(user, id);
CREATE TABLE IF NOT EXISTS devices (
	id TEXT PRIMARY KEY,
	hostname TEXT NOT NULL,
	public_key BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL DEFAULT 0,
	last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bindings (
	device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	local_name TEXT NOT NULL,
	synced_version INTEGER NOT NULL DEFAULT 0,
	synced_at INTEGER NOT NULL DEFAULT 0,
	bound_at INTEGER NOT NULL,
	expiry_warned_at INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (device_id, user)
);
CREATE INDEX IF NOT EXISTS bindings_user ON bindings(user);
CREATE TABLE IF NOT EXISTS outbox (
	device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	seq INTEGER NOT NULL,
	type TEXT NOT NULL,
	body BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS enroll_tokens (
	hash BLOB PRIMARY KEY,
	note TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at INTEGER NOT NULL DEFAULT 0,
	device_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS idempotency (
	device_id TEXT NOT NULL,
	key TEXT NOT NULL,
	fingerprint BLOB NOT NULL,
	outcome BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (device_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency(created_at);
CREATE TABLE IF NOT EXISTS settings (
	name TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	at INTEGER NOT NULL,
	event TEXT NOT NULL,
	actor TEXT NOT NULL DEFAULT '',
	user TEXT NOT NULL DEFAULT '',
	device TEXT NOT NULL DEFAULT '',
	source TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_user ON audit(user, at);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
`

// schemaV2: separate second-factor and linking failure counts, device
// notes, addresses and revocation, how a binding was made, the users an
// enrollment token binds, and an index for the per-device idempotency cap.
const schemaV2 = `
ALTER TABLE users ADD COLUMN mfa_failed_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN mfa_failed_window_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN link_failed_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN link_failed_window_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN link_locked_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN last_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bindings ADD COLUMN bound_by TEXT NOT NULL DEFAULT 'legacy';
ALTER TABLE enroll_tokens ADD COLUMN users TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS idempotency_device ON idempotency(device_id, created_at);
`

// migrate applies the versions the database lacks, each in one
// transaction with its user_version.
func (s *SQLite) migrate(ctx context.Context) error {
	var cur int
	if err := s.w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&cur); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if cur > len(sqliteMigrations) {
		return fmt.Errorf("the database schema is version %d, newer than this lockstep-directory knows (%d): upgrade it", cur, len(sqliteMigrations))
	}
	for v := cur + 1; v <= len(sqliteMigrations); v++ {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", v, err)
		}
		for _, stmt := range strings.Split(sqliteMigrations[v-1], ";\n") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("migrating schema to version %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migrating schema to version %d: %w", v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", v, err)
		}
	}
	return nil
}

type sqliteTx struct{ tx *sql.Tx }

// ts stores times as Unix nanoseconds; the zero time is 0.
func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}

const userCols = `name, display_name, password_hash, password_version, password_changed_at, must_change,
	failed_count, failed_window_start, locked_until, totp_secret, totp_last_step, created_at,
	mfa_failed_count, mfa_failed_window_start, link_failed_count, link_failed_window_start, link_locked_until,
	email, mfa_enroll_until, totp_pending, totp_pending_at`

type scanner interface{ Scan(...any) error }

func scanUser(r scanner) (User, error) {
	var u User
	var changed, window, locked, created, mfaWindow, linkWindow, linkLocked, enrollUntil, pendingAt int64
	err := r.Scan(&u.Name, &u.DisplayName, &u.PasswordHash, &u.PasswordVersion, &changed, &u.MustChange,
		&u.FailedCount, &window, &locked, &u.TOTPSecret, &u.TOTPLastStep, &created,
		&u.MFAFailedCount, &mfaWindow, &u.LinkFailedCount, &linkWindow, &linkLocked,
		&u.Email, &enrollUntil, &u.TOTPPending, &pendingAt)
	u.PasswordChangedAt, u.FailedWindowStart, u.LockedUntil, u.CreatedAt = fromTS(changed), fromTS(window), fromTS(locked), fromTS(created)
	u.MFAFailedWindowStart, u.LinkFailedWindowStart, u.LinkLockedUntil = fromTS(mfaWindow), fromTS(linkWindow), fromTS(linkLocked)
	u.MFAEnrollUntil, u.TOTPPendingAt = fromTS(enrollUntil), fromTS(pendingAt)
	return u, err
}

func (t *sqliteTx) User(ctx context.Context, name string) (User, error) {
	u, err := scanUser(t.tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name))
	if err != nil {
		return User{}, notFound(err, "user "+name)
	}
	return u, nil
}

func (t *sqliteTx) users(ctx context.Context, q string, args ...any) ([]User, error) {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("listing users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (t *sqliteTx) Users(ctx context.Context) ([]User, error) {
	return t.users(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
}

func (t *sqliteTx) UsersChangedBefore(ctx context.Context, before time.Time) ([]User, error) {
	return t.users(ctx, `SELECT `+userCols+` FROM users WHERE password_changed_at < ? ORDER BY name`, ts(before))
}

func (t *sqliteTx) CreateUser(ctx context.Context, u User) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO users (`+userCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		u.Name, u.DisplayName, u.PasswordHash, u.PasswordVersion, ts(u.PasswordChangedAt), u.MustChange,
		u.FailedCount, ts(u.FailedWindowStart), ts(u.LockedUntil), u.TOTPSecret, u.TOTPLastStep, ts(u.CreatedAt),
		u.MFAFailedCount, ts(u.MFAFailedWindowStart), u.LinkFailedCount, ts(u.LinkFailedWindowStart), ts(u.LinkLockedUntil),
		NormalizeEmail(u.Email), ts(u.MFAEnrollUntil), u.TOTPPending, ts(u.TOTPPendingAt))
	if constraint(err) {
		return fmt.Errorf("user %s: %w", u.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("creating user %s: %w", u.Name, err)
	}
	return nil
}

func (t *sqliteTx) UpdateUser(ctx context.Context, u User) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE users SET display_name=?, password_hash=?, password_version=?,
		password_changed_at=?, must_change=?, failed_count=?, failed_window_start=?, locked_until=?,
		totp_secret=?, totp_last_step=?, mfa_failed_count=?, mfa_failed_window_start=?,
		link_failed_count=?, link_failed_window_start=?, link_locked_until=?,
		email=?, mfa_enroll_until=?, totp_pending=?, totp_pending_at=? WHERE name=?`,
		u.DisplayName, u.PasswordHash, u.PasswordVersion, ts(u.PasswordChangedAt), u.MustChange, u.FailedCount,
		ts(u.FailedWindowStart), ts(u.LockedUntil), u.TOTPSecret, u.TOTPLastStep, u.MFAFailedCount, ts(u.MFAFailedWindowStart),
		u.LinkFailedCount, ts(u.LinkFailedWindowStart), ts(u.LinkLockedUntil),
		NormalizeEmail(u.Email), ts(u.MFAEnrollUntil), u.TOTPPending, ts(u.TOTPPendingAt), u.Name)
	return affected(res, err, "updating user "+u.Name)
}

func affected(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

func (t *sqliteTx) DeleteUser(ctx context.Context, name string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM users WHERE name=?`, name)
	return affected(res, err, "deleting user "+name)
}

func (t *sqliteTx) PasswordHistory(ctx context.Context, user string, n int) ([]string, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT hash FROM password_history WHERE user=? ORDER BY id DESC LIMIT ?`, user, n)
	if err != nil {
		return nil, fmt.Errorf("reading password history: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("reading password history: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (t *sqliteTx) AddPasswordHistory(ctx context.Context, user, hash string, at time.Time, keep int) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO password_history (user, hash, set_at) VALUES (?,?,?)`, user, hash, ts(at)); err != nil {
		return fmt.Errorf("adding password history: %w", err)
	}
	_, err := t.tx.ExecContext(ctx, `DELETE FROM password_history WHERE user=? AND id NOT IN
		(SELECT id FROM password_history WHERE user=? ORDER BY id DESC LIMIT ?)`, user, user, keep)
	if err != nil {
		return fmt.Errorf("pruning password history: %w", err)
	}
	return nil
}

const deviceCols = `id, hostname, public_key, created_at, last_seen_at, last_seq, note, last_addr, revoked_at`

func scanDevice(r scanner) (Device, error) {
	var d Device
	var created, seen, revoked int64
	err := r.Scan(&d.ID, &d.Hostname, &d.PublicKey, &created, &seen, &d.LastSeq, &d.Note, &d.LastAddr, &revoked)
	d.CreatedAt, d.LastSeenAt, d.RevokedAt = fromTS(created), fromTS(seen), fromTS(revoked)
	return d, err
}

func (t *sqliteTx) Device(ctx context.Context, id string) (Device, error) {
	d, err := scanDevice(t.tx.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE id=?`, id))
	if err != nil {
		return Device{}, notFound(err, "device "+id)
	}
	return d, nil
}

func (t *sqliteTx) Devices(ctx context.Context) ([]Device, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+deviceCols+` FROM devices ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("listing devices: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (t *sqliteTx) CreateDevice(ctx context.Context, d Device) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO devices (`+deviceCols+`) VALUES (?,?,?,?,?,?,?,?,?)`,
		d.ID, d.Hostname, d.PublicKey, ts(d.CreatedAt), ts(d.LastSeenAt), d.LastSeq, d.Note, d.LastAddr, ts(d.RevokedAt))
	if constraint(err) {
		return fmt.Errorf("device %s: %w", d.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("creating device: %w", err)
	}
	return nil
}

func (t *sqliteTx) TouchDevice(ctx context.Context, id string, at time.Time, addr string) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE devices SET last_seen_at=?, last_addr=? WHERE id=?`, ts(at), addr, id)
	return affected(res, err, "touching device "+id)
}

func (t *sqliteTx) RevokeDevice(ctx context.Context, id string, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE devices SET revoked_at=? WHERE id=?`, ts(at), id)
	if err := affected(res, err, "revoking device "+id); err != nil {
		return err
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM bindings WHERE device_id=?`, id); err != nil {
		return fmt.Errorf("revoking device %s: %w", id, err)
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM outbox WHERE device_id=?`, id); err != nil {
		return fmt.Errorf("revoking device %s: %w", id, err)
	}
	return nil
}

func (t *sqliteTx) RevokedDevices(ctx context.Context) ([]string, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT id FROM devices WHERE revoked_at != 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing revoked devices: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("listing revoked devices: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

const bindingCols = `device_id, user, local_name, synced_version, synced_at, bound_at, expiry_warned_at, bound_by`

func scanBinding(r scanner) (Binding, error) {
	var b Binding
	var synced, bound, warned int64
	err := r.Scan(&b.DeviceID, &b.User, &b.LocalName, &b.SyncedVersion, &synced, &bound, &warned, &b.BoundBy)
	b.SyncedAt, b.BoundAt, b.ExpiryWarnedAt = fromTS(synced), fromTS(bound), fromTS(warned)
	return b, err
}

func (t *sqliteTx) Bind(ctx context.Context, b Binding) error {
	if b.BoundBy == "" {
		b.BoundBy = BoundByLegacy
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO bindings (device_id, user, local_name, bound_at, bound_by) VALUES (?,?,?,?,?)
		ON CONFLICT (device_id, user) DO UPDATE SET local_name=excluded.local_name`,
		b.DeviceID, b.User, b.LocalName, ts(b.BoundAt), b.BoundBy)
	if err != nil {
		return fmt.Errorf("binding %s to %s: %w", b.User, b.DeviceID, err)
	}
	return nil
}

func (t *sqliteTx) Unbind(ctx context.Context, deviceID, user string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM bindings WHERE device_id=? AND user=?`, deviceID, user)
	return affected(res, err, "unbinding")
}

func (t *sqliteTx) DeviceBindings(ctx context.Context, deviceID string) ([]Binding, error) {
	return t.bindings(ctx, `SELECT `+bindingCols+` FROM bindings WHERE device_id=? ORDER BY user`, deviceID)
}

func (t *sqliteTx) Bindings(ctx context.Context) ([]Binding, error) {
	return t.bindings(ctx, `SELECT `+bindingCols+` FROM bindings ORDER BY device_id, user`)
}

func (t *sqliteTx) bindings(ctx context.Context, q string, args ...any) ([]Binding, error) {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing bindings: %w", err)
	}
	defer rows.Close()
	var out []Binding
	for rows.Next() {
		b, err := scanBinding(rows)
		if err != nil {
			return nil, fmt.Errorf("listing bindings: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func (t *sqliteTx) Binding(ctx context.Context, deviceID, user string) (Binding, error) {
	b, err := scanBinding(t.tx.QueryRowContext(ctx, `SELECT `+bindingCols+` FROM bindings WHERE device_id=? AND user=?`, deviceID, user))
	if err != nil {
		return Binding{}, notFound(err, "binding")
	}
	return b, nil
}

func (t *sqliteTx) UserBindings(ctx context.Context, user string) ([]Binding, error) {
	return t.bindings(ctx, `SELECT `+bindingCols+` FROM bindings WHERE user=? ORDER BY device_id`, user)
}

func (t *sqliteTx) SetSyncedVersion(ctx context.Context, deviceID, user string, version int64, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE bindings SET synced_version=?, synced_at=? WHERE device_id=? AND user=?`,
		version, ts(at), deviceID, user)
	return affected(res, err, "recording sync")
}

func (t *sqliteTx) SetExpiryWarned(ctx context.Context, deviceID, user string, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE bindings SET expiry_warned_at=? WHERE device_id=? AND user=?`, ts(at), deviceID, user)
	return affected(res, err, "recording expiry warning")
}

func (t *sqliteTx) AppendPush(ctx context.Context, deviceID, typ string, body []byte, at time.Time) (uint64, error) {
	if body == nil {
		body = []byte{}
	}
	var seq uint64
	err := t.tx.QueryRowContext(ctx, `UPDATE devices SET last_seq = last_seq + 1 WHERE id=? RETURNING last_seq`, deviceID).Scan(&seq)
	if err != nil {
		return 0, notFound(err, "device "+deviceID)
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO outbox (device_id, seq, type, body, created_at) VALUES (?,?,?,?,?)`,
		deviceID, seq, typ, body, ts(at)); err != nil {
		return 0, fmt.Errorf("storing push: %w", err)
	}
	return seq, nil
}

func (t *sqliteTx) Pushes(ctx context.Context, deviceID string, after uint64) ([]Push, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT seq, type, body, created_at FROM outbox WHERE device_id=? AND seq>? ORDER BY seq`, deviceID, after)
	if err != nil {
		return nil, fmt.Errorf("reading outbox: %w", err)
	}
	defer rows.Close()
	var out []Push
	for rows.Next() {
		p := Push{DeviceID: deviceID}
		var created int64
		if err := rows.Scan(&p.Seq, &p.Type, &p.Body, &created); err != nil {
			return nil, fmt.Errorf("reading outbox: %w", err)
		}
		p.CreatedAt = fromTS(created)
		out = append(out, p)
	}
	return out, rows.Err()
}

func (t *sqliteTx) AckPushes(ctx context.Context, deviceID string, seq uint64) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM outbox WHERE device_id=? AND seq<=?`, deviceID, seq); err != nil {
		return fmt.Errorf("pruning outbox: %w", err)
	}
	return nil
}

func (t *sqliteTx) CreateEnrollToken(ctx context.Context, e EnrollToken) error {
	users, err := encodeUsers(e.Users)
	if err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO enroll_tokens (hash, note, created_at, expires_at, users) VALUES (?,?,?,?,?)`,
		e.Hash, e.Note, ts(e.CreatedAt), ts(e.ExpiresAt), users)
	if err != nil {
		return fmt.Errorf("creating enrollment token: %w", err)
	}
	return nil
}

// encodeUsers stores a token's user list as JSON text ("" for none).
func encodeUsers(users []string) (string, error) {
	if len(users) == 0 {
		return "", nil
	}
	b, err := json.Marshal(users)
	if err != nil {
		return "", fmt.Errorf("encoding token users: %w", err)
	}
	return string(b), nil
}

func decodeUsers(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var users []string
	if err := json.Unmarshal([]byte(s), &users); err != nil {
		return nil, fmt.Errorf("decoding token users: %w", err)
	}
	return users, nil
}

func (t *sqliteTx) EnrollToken(ctx context.Context, hash []byte) (EnrollToken, error) {
	e := EnrollToken{Hash: hash}
	var created, expires, used int64
	var users string
	err := t.tx.QueryRowContext(ctx, `SELECT note, created_at, expires_at, used_at, device_id, users FROM enroll_tokens WHERE hash=?`, hash).
		Scan(&e.Note, &created, &expires, &used, &e.DeviceID, &users)
	if err != nil {
		return EnrollToken{}, notFound(err, "enrollment token")
	}
	e.CreatedAt, e.ExpiresAt, e.UsedAt = fromTS(created), fromTS(expires), fromTS(used)
	if e.Users, err = decodeUsers(users); err != nil {
		return EnrollToken{}, err
	}
	return e, nil
}

func (t *sqliteTx) UseEnrollToken(ctx context.Context, hash []byte, deviceID string, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE enroll_tokens SET used_at=?, device_id=? WHERE hash=? AND used_at=0`, ts(at), deviceID, hash)
	return affected(res, err, "using enrollment token")
}

func (t *sqliteTx) Idempotency(ctx context.Context, deviceID, key string) (IdempotencyRecord, error) {
	r := IdempotencyRecord{DeviceID: deviceID, Key: key}
	var created int64
	err := t.tx.QueryRowContext(ctx, `SELECT fingerprint, outcome, created_at FROM idempotency WHERE device_id=? AND key=?`, deviceID, key).
		Scan(&r.Fingerprint, &r.Outcome, &created)
	if err != nil {
		return IdempotencyRecord{}, notFound(err, "idempotency record")
	}
	r.CreatedAt = fromTS(created)
	return r, nil
}

func (t *sqliteTx) PutIdempotency(ctx context.Context, r IdempotencyRecord, keep int) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO idempotency (device_id, key, fingerprint, outcome, created_at) VALUES (?,?,?,?,?)`,
		r.DeviceID, r.Key, r.Fingerprint, r.Outcome, ts(r.CreatedAt))
	if constraint(err) {
		return fmt.Errorf("idempotency record: %w", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("storing idempotency record: %w", err)
	}
	_, err = t.tx.ExecContext(ctx, `DELETE FROM idempotency WHERE device_id=? AND key NOT IN
		(SELECT key FROM idempotency WHERE device_id=? ORDER BY created_at DESC, key DESC LIMIT ?)`, r.DeviceID, r.DeviceID, keep)
	if err != nil {
		return fmt.Errorf("pruning idempotency records: %w", err)
	}
	return nil
}

func (t *sqliteTx) PruneIdempotency(ctx context.Context, before time.Time) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM idempotency WHERE created_at < ?`, ts(before)); err != nil {
		return fmt.Errorf("pruning idempotency records: %w", err)
	}
	return nil
}

func (t *sqliteTx) Policy(ctx context.Context) (protocol.Policy, error) {
	var b []byte
	if err := t.tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name='policy'`).Scan(&b); err != nil {
		return protocol.Policy{}, notFound(err, "policy")
	}
	var p protocol.Policy
	if err := json.Unmarshal(b, &p); err != nil {
		return protocol.Policy{}, fmt.Errorf("decoding stored policy: %w", err)
	}
	return p, nil
}

func (t *sqliteTx) SetPolicy(ctx context.Context, p protocol.Policy) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding policy: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('policy', ?)
		ON CONFLICT (name) DO UPDATE SET value=excluded.value`, b); err != nil {
		return fmt.Errorf("storing policy: %w", err)
	}
	return nil
}

func (t *sqliteTx) Setting(ctx context.Context, name string) ([]byte, error) {
	var b []byte
	if err := t.tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name=?`, name).Scan(&b); err != nil {
		return nil, notFound(err, "setting "+name)
	}
	return b, nil
}

func (t *sqliteTx) PutSetting(ctx context.Context, name string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value=excluded.value`, name, value); err != nil {
		return fmt.Errorf("storing setting %s: %w", name, err)
	}
	return nil
}

func (t *sqliteTx) CreateSetting(ctx context.Context, name string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	res, err := t.tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value)
	if err != nil {
		return fmt.Errorf("storing setting %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("storing setting %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("setting %s: %w", name, ErrExists)
	}
	return nil
}

func (t *sqliteTx) Audit(ctx context.Context, e AuditEvent) error {
	var detail []byte
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("encoding audit detail: %w", err)
		}
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO audit (at, event, actor, user, device, source, detail) VALUES (?,?,?,?,?,?,?)`,
		ts(e.At), e.Event, e.Actor, e.User, e.Device, e.Source, string(detail))
	if err != nil {
		return fmt.Errorf("writing audit event: %w", err)
	}
	return nil
}

func (t *sqliteTx) PruneAudit(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? ORDER BY id LIMIT ?)`, ts(before), limit)
	if err != nil {
		return 0, fmt.Errorf("pruning audit log: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("pruning audit log: %w", err)
	}
	return int(n), nil
}

func (t *sqliteTx) AuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	q := `SELECT id, at, event, actor, user, device, source, detail FROM audit WHERE at >= ?`
	args := []any{ts(f.Since)}
	if f.User != "" {
		q += ` AND user = ?`
		args = append(args, f.User)
	}
	if f.Actor != "" {
		q += ` AND actor = ?`
		args = append(args, f.Actor)
	}
	if f.Event != "" {
		q += ` AND event = ?`
		args = append(args, f.Event)
	}
	if !f.Until.IsZero() {
		q += ` AND at < ?`
		args = append(args, ts(f.Until))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at int64
		var detail string
		if err := rows.Scan(&e.ID, &at, &e.Event, &e.Actor, &e.User, &e.Device, &e.Source, &detail); err != nil {
			return nil, fmt.Errorf("reading audit log: %w", err)
		}
		e.At = fromTS(at)
		if detail != "" {
			if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
				return nil, fmt.Errorf("decoding audit detail: %w", err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Oldest first reads naturally in a log.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
