package store

import (
	"context"
	"fmt"
	"time"
)

// schemaConsoleV1: console administrators, browser sessions, and revoked
// enrollment tokens.
const schemaConsoleV1 = `
CREATE TABLE IF NOT EXISTS admins (
	name TEXT PRIMARY KEY,
	role TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	must_change INTEGER NOT NULL DEFAULT 0,
	totp_secret BLOB,
	totp_last_step INTEGER NOT NULL DEFAULT 0,
	failed_count INTEGER NOT NULL DEFAULT 0,
	failed_window_start INTEGER NOT NULL DEFAULT 0,
	locked_until INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	password_changed_at INTEGER NOT NULL DEFAULT 0,
	last_sign_in_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS web_sessions (
	id BLOB PRIMARY KEY,
	kind TEXT NOT NULL,
	subject TEXT NOT NULL,
	stage TEXT NOT NULL DEFAULT '',
	pending BLOB,
	addr TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS web_sessions_subject ON web_sessions(kind, subject);
CREATE INDEX IF NOT EXISTS web_sessions_seen ON web_sessions(last_seen_at);
ALTER TABLE enroll_tokens ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
`

const adminCols = `name, role, password_hash, must_change, totp_secret, totp_last_step, failed_count, failed_window_start,
	locked_until, created_at, password_changed_at, last_sign_in_at`

func scanAdmin(r scanner) (Admin, error) {
	var a Admin
	var window, locked, created, changed, signIn int64
	err := r.Scan(&a.Name, &a.Role, &a.PasswordHash, &a.MustChange, &a.TOTPSecret, &a.TOTPLastStep, &a.FailedCount, &window,
		&locked, &created, &changed, &signIn)
	a.FailedWindowStart, a.LockedUntil, a.CreatedAt = fromTS(window), fromTS(locked), fromTS(created)
	a.PasswordChangedAt, a.LastSignInAt = fromTS(changed), fromTS(signIn)
	return a, err
}

func (t *sqliteTx) Admin(ctx context.Context, name string) (Admin, error) {
	a, err := scanAdmin(t.tx.QueryRowContext(ctx, `SELECT `+adminCols+` FROM admins WHERE name=?`, name))
	if err != nil {
		return Admin{}, notFound(err, "administrator "+name)
	}
	return a, nil
}

func (t *sqliteTx) Admins(ctx context.Context) ([]Admin, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+adminCols+` FROM admins ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing administrators: %w", err)
	}
	defer rows.Close()
	var out []Admin
	for rows.Next() {
		a, err := scanAdmin(rows)
		if err != nil {
			return nil, fmt.Errorf("listing administrators: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (t *sqliteTx) CreateAdmin(ctx context.Context, a Admin) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO admins (`+adminCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		a.Name, a.Role, a.PasswordHash, a.MustChange, a.TOTPSecret, a.TOTPLastStep, a.FailedCount, ts(a.FailedWindowStart),
		ts(a.LockedUntil), ts(a.CreatedAt), ts(a.PasswordChangedAt), ts(a.LastSignInAt))
	if constraint(err) {
		return fmt.Errorf("administrator %s: %w", a.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("creating administrator %s: %w", a.Name, err)
	}
	return nil
}

func (t *sqliteTx) UpdateAdmin(ctx context.Context, a Admin) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE admins SET role=?, password_hash=?, must_change=?, totp_secret=?, totp_last_step=?,
		failed_count=?, failed_window_start=?, locked_until=?, password_changed_at=?, last_sign_in_at=? WHERE name=?`,
		a.Role, a.PasswordHash, a.MustChange, a.TOTPSecret, a.TOTPLastStep, a.FailedCount, ts(a.FailedWindowStart),
		ts(a.LockedUntil), ts(a.PasswordChangedAt), ts(a.LastSignInAt), a.Name)
	return affected(res, err, "updating administrator "+a.Name)
}

func (t *sqliteTx) DeleteAdmin(ctx context.Context, name string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM admins WHERE name=?`, name)
	if err := affected(res, err, "deleting administrator "+name); err != nil {
		return err
	}
	_, err = t.DeleteSessions(ctx, SessionAdmin, name)
	return err
}

const sessionCols = `id, kind, subject, stage, pending, addr, created_at, last_seen_at`

func (t *sqliteTx) Session(ctx context.Context, id []byte) (Session, error) {
	var s Session
	var created, seen int64
	err := t.tx.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM web_sessions WHERE id=?`, id).
		Scan(&s.ID, &s.Kind, &s.Subject, &s.Stage, &s.Pending, &s.Addr, &created, &seen)
	if err != nil {
		return Session{}, notFound(err, "session")
	}
	s.CreatedAt, s.LastSeenAt = fromTS(created), fromTS(seen)
	return s, nil
}

func (t *sqliteTx) PutSession(ctx context.Context, s Session) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO web_sessions (`+sessionCols+`) VALUES (?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET stage=excluded.stage, pending=excluded.pending, addr=excluded.addr,
		last_seen_at=excluded.last_seen_at`,
		s.ID, s.Kind, s.Subject, s.Stage, s.Pending, s.Addr, ts(s.CreatedAt), ts(s.LastSeenAt))
	if err != nil {
		return fmt.Errorf("storing session: %w", err)
	}
	return nil
}

func (t *sqliteTx) DeleteSession(ctx context.Context, id []byte) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE id=?`, id); err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	return nil
}

func (t *sqliteTx) DeleteSessions(ctx context.Context, kind, subject string) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE kind=? AND subject=?`, kind, subject)
	if err != nil {
		return 0, fmt.Errorf("deleting sessions: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *sqliteTx) PruneSessions(ctx context.Context, idle, absolute time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE last_seen_at < ? OR created_at < ?`, ts(idle), ts(absolute))
	if err != nil {
		return 0, fmt.Errorf("pruning sessions: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *sqliteTx) EnrollTokens(ctx context.Context) ([]EnrollToken, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT hash, note, created_at, expires_at, used_at, device_id, users, revoked_at
		FROM enroll_tokens ORDER BY created_at DESC, hash`)
	if err != nil {
		return nil, fmt.Errorf("listing enrollment tokens: %w", err)
	}
	defer rows.Close()
	var out []EnrollToken
	for rows.Next() {
		var e EnrollToken
		var created, expires, used, revoked int64
		var users string
		if err := rows.Scan(&e.Hash, &e.Note, &created, &expires, &used, &e.DeviceID, &users, &revoked); err != nil {
			return nil, fmt.Errorf("listing enrollment tokens: %w", err)
		}
		e.CreatedAt, e.ExpiresAt, e.UsedAt, e.RevokedAt = fromTS(created), fromTS(expires), fromTS(used), fromTS(revoked)
		if e.Users, err = decodeUsers(users); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (t *sqliteTx) RevokeEnrollToken(ctx context.Context, hash []byte, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE enroll_tokens SET revoked_at=?, expires_at=min(expires_at, ?) WHERE hash=?`, ts(at), ts(at), hash)
	return affected(res, err, "revoking enrollment token")
}
