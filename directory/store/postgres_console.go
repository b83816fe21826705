package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgSchemaConsoleV1: console administrators, browser sessions, and revoked
// enrollment tokens.
const pgSchemaConsoleV1 = `CREATE TABLE admins (
	name text PRIMARY KEY,
	role text NOT NULL,
	password_hash text NOT NULL,
	must_change boolean NOT NULL DEFAULT false,
	totp_secret bytea,
	totp_last_step bigint NOT NULL DEFAULT 0,
	failed_count integer NOT NULL DEFAULT 0,
	failed_window_start timestamptz,
	locked_until timestamptz,
	created_at timestamptz NOT NULL,
	password_changed_at timestamptz,
	last_sign_in_at timestamptz
);
CREATE TABLE web_sessions (
	id bytea PRIMARY KEY,
	kind text NOT NULL,
	subject text NOT NULL,
	stage text NOT NULL DEFAULT '',
	pending bytea,
	addr text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	last_seen_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_subject ON web_sessions (kind, subject);
CREATE INDEX web_sessions_seen ON web_sessions (last_seen_at);
ALTER TABLE enroll_tokens ADD COLUMN revoked_at timestamptz;`

func (t *pgTx) scanAdmin(r interface{ Scan(...any) error }) (Admin, error) {
	var a Admin
	var window, locked, created, changed, signIn pgtype.Timestamptz
	err := r.Scan(&a.Name, &a.Role, &a.PasswordHash, &a.MustChange, &a.TOTPSecret, &a.TOTPLastStep, &a.FailedCount, &window,
		&locked, &created, &changed, &signIn)
	a.FailedWindowStart, a.LockedUntil, a.CreatedAt = fromPG(window), fromPG(locked), fromPG(created)
	a.PasswordChangedAt, a.LastSignInAt = fromPG(changed), fromPG(signIn)
	return a, err
}

func (t *pgTx) Admin(ctx context.Context, name string) (Admin, error) {
	a, err := t.scanAdmin(t.tx.QueryRow(ctx, `SELECT `+adminCols+` FROM admins WHERE name=$1`, name))
	if err != nil {
		return Admin{}, t.pgNotFound(err, "administrator "+name)
	}
	return a, nil
}

func (t *pgTx) Admins(ctx context.Context) ([]Admin, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+adminCols+` FROM admins ORDER BY name`)
	if err != nil {
		return nil, t.fail(err, "listing administrators")
	}
	defer rows.Close()
	var out []Admin
	for rows.Next() {
		a, err := t.scanAdmin(rows)
		if err != nil {
			return nil, t.fail(err, "listing administrators")
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err, "listing administrators")
	}
	return out, nil
}

func (t *pgTx) CreateAdmin(ctx context.Context, a Admin) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO admins (`+adminCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		a.Name, a.Role, a.PasswordHash, a.MustChange, a.TOTPSecret, a.TOTPLastStep, a.FailedCount, pgNullTime(a.FailedWindowStart),
		pgNullTime(a.LockedUntil), pgTime(a.CreatedAt), pgNullTime(a.PasswordChangedAt), pgNullTime(a.LastSignInAt))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		_ = t.fail(err, "creating administrator "+a.Name)
		return fmt.Errorf("administrator %s: %w", a.Name, ErrExists)
	}
	if err != nil {
		return t.fail(err, "creating administrator "+a.Name)
	}
	return nil
}

func (t *pgTx) UpdateAdmin(ctx context.Context, a Admin) error {
	tag, err := t.tx.Exec(ctx, `UPDATE admins SET role=$1, password_hash=$2, must_change=$3, totp_secret=$4, totp_last_step=$5,
		failed_count=$6, failed_window_start=$7, locked_until=$8, password_changed_at=$9, last_sign_in_at=$10 WHERE name=$11`,
		a.Role, a.PasswordHash, a.MustChange, a.TOTPSecret, a.TOTPLastStep, a.FailedCount, pgNullTime(a.FailedWindowStart),
		pgNullTime(a.LockedUntil), pgNullTime(a.PasswordChangedAt), pgNullTime(a.LastSignInAt), a.Name)
	return t.pgAffected(tag, err, "updating administrator "+a.Name)
}

func (t *pgTx) DeleteAdmin(ctx context.Context, name string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM admins WHERE name=$1`, name)
	if err := t.pgAffected(tag, err, "deleting administrator "+name); err != nil {
		return err
	}
	_, err = t.DeleteSessions(ctx, SessionAdmin, name)
	return err
}

func (t *pgTx) Session(ctx context.Context, id []byte) (Session, error) {
	var s Session
	var created, seen pgtype.Timestamptz
	err := t.tx.QueryRow(ctx, `SELECT `+sessionCols+` FROM web_sessions WHERE id=$1`, id).
		Scan(&s.ID, &s.Kind, &s.Subject, &s.Stage, &s.Pending, &s.Addr, &created, &seen)
	if err != nil {
		return Session{}, t.pgNotFound(err, "session")
	}
	s.CreatedAt, s.LastSeenAt = fromPG(created), fromPG(seen)
	return s, nil
}

func (t *pgTx) PutSession(ctx context.Context, s Session) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO web_sessions (`+sessionCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
		ON CONFLICT (id) DO UPDATE SET stage=excluded.stage, pending=excluded.pending, addr=excluded.addr,
		last_seen_at=excluded.last_seen_at`,
		s.ID, s.Kind, s.Subject, s.Stage, s.Pending, s.Addr, pgTime(s.CreatedAt), pgTime(s.LastSeenAt))
	if err != nil {
		return t.fail(err, "storing session")
	}
	return nil
}

func (t *pgTx) DeleteSession(ctx context.Context, id []byte) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM web_sessions WHERE id=$1`, id); err != nil {
		return t.fail(err, "deleting session")
	}
	return nil
}

func (t *pgTx) DeleteSessions(ctx context.Context, kind, subject string) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM web_sessions WHERE kind=$1 AND subject=$2`, kind, subject)
	if err != nil {
		return 0, t.fail(err, "deleting sessions")
	}
	return int(tag.RowsAffected()), nil
}

func (t *pgTx) PruneSessions(ctx context.Context, idle, absolute time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM web_sessions WHERE last_seen_at < $1 OR created_at < $2`, pgTime(idle), pgTime(absolute))
	if err != nil {
		return 0, t.fail(err, "pruning sessions")
	}
	return int(tag.RowsAffected()), nil
}

func (t *pgTx) EnrollTokens(ctx context.Context) ([]EnrollToken, error) {
	rows, err := t.tx.Query(ctx, `SELECT hash, note, created_at, expires_at, used_at, device_id, users, revoked_at
		FROM enroll_tokens ORDER BY created_at DESC, hash`)
	if err != nil {
		return nil, t.fail(err, "listing enrollment tokens")
	}
	defer rows.Close()
	var out []EnrollToken
	for rows.Next() {
		var e EnrollToken
		var created, expires, used, revoked pgtype.Timestamptz
		if err := rows.Scan(&e.Hash, &e.Note, &created, &expires, &used, &e.DeviceID, &e.Users, &revoked); err != nil {
			return nil, t.fail(err, "listing enrollment tokens")
		}
		if len(e.Users) == 0 {
			e.Users = nil
		}
		e.CreatedAt, e.ExpiresAt, e.UsedAt, e.RevokedAt = fromPG(created), fromPG(expires), fromPG(used), fromPG(revoked)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err, "listing enrollment tokens")
	}
	return out, nil
}

func (t *pgTx) RevokeEnrollToken(ctx context.Context, hash []byte, at time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE enroll_tokens SET revoked_at=$1, expires_at=least(expires_at, $1) WHERE hash=$2`, pgTime(at), hash)
	return t.pgAffected(tag, err, "revoking enrollment token")
}
