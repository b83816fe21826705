package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Schema version 4, for both backends: e-mail addresses, MFA enrolment
// periods and pending enrolments, password reset tokens, and what each
// device last reported of its user's places.

// schemaV4 (SQLite).
const schemaV4 = `
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN mfa_enroll_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_pending BLOB;
ALTER TABLE users ADD COLUMN totp_pending_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS users_email ON users(email) WHERE email != '';
CREATE TABLE IF NOT EXISTS reset_tokens (
	hash BLOB PRIMARY KEY,
	user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reset_tokens_user ON reset_tokens(user);
CREATE INDEX IF NOT EXISTS reset_tokens_expires ON reset_tokens(expires_at);
CREATE TABLE IF NOT EXISTS place_states (
	device_id TEXT NOT NULL,
	user TEXT NOT NULL,
	place TEXT NOT NULL,
	state TEXT NOT NULL,
	at INTEGER NOT NULL,
	reported_at INTEGER NOT NULL,
	PRIMARY KEY (device_id, user, place),
	FOREIGN KEY (device_id, user) REFERENCES bindings(device_id, user) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS place_states_user ON place_states(user);
`

// pgSchemaV4 (PostgreSQL).
const pgSchemaV4 = `ALTER TABLE users ADD COLUMN email text NOT NULL DEFAULT '',
	ADD COLUMN mfa_enroll_until timestamptz,
	ADD COLUMN totp_pending bytea,
	ADD COLUMN totp_pending_at timestamptz;
CREATE INDEX users_email ON users (email) WHERE email <> '';
CREATE TABLE reset_tokens (
	hash bytea PRIMARY KEY,
	user_name text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at timestamptz
);
CREATE INDEX reset_tokens_user ON reset_tokens (user_name);
CREATE INDEX reset_tokens_expires ON reset_tokens (expires_at);
CREATE TABLE place_states (
	device_id text NOT NULL,
	user_name text NOT NULL,
	place text NOT NULL,
	state text NOT NULL,
	at timestamptz NOT NULL,
	reported_at timestamptz NOT NULL,
	PRIMARY KEY (device_id, user_name, place),
	FOREIGN KEY (device_id, user_name) REFERENCES bindings (device_id, user_name) ON DELETE CASCADE
);
CREATE INDEX place_states_user ON place_states (user_name);`

// SQLite.

func (t *sqliteTx) UsersByEmail(ctx context.Context, email string) ([]User, error) {
	email = NormalizeEmail(email)
	if email == "" {
		return nil, nil
	}
	return t.users(ctx, `SELECT `+userCols+` FROM users WHERE email = ? ORDER BY name`, email)
}

func (t *sqliteTx) CreateResetToken(ctx context.Context, r ResetToken) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO reset_tokens (hash, user, created_at, expires_at) VALUES (?,?,?,?)`,
		r.Hash, r.User, ts(r.CreatedAt), ts(r.ExpiresAt))
	if constraint(err) {
		return fmt.Errorf("reset token for %s: %w", r.User, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("creating reset token: %w", err)
	}
	return nil
}

func (t *sqliteTx) ResetToken(ctx context.Context, hash []byte) (ResetToken, error) {
	r := ResetToken{Hash: hash}
	var created, expires, used int64
	err := t.tx.QueryRowContext(ctx, `SELECT user, created_at, expires_at, used_at FROM reset_tokens WHERE hash=?`, hash).
		Scan(&r.User, &created, &expires, &used)
	if err != nil {
		return ResetToken{}, notFound(err, "reset token")
	}
	r.CreatedAt, r.ExpiresAt, r.UsedAt = fromTS(created), fromTS(expires), fromTS(used)
	return r, nil
}

func (t *sqliteTx) UseResetToken(ctx context.Context, hash []byte, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE reset_tokens SET used_at=? WHERE hash=? AND used_at=0`, ts(at), hash)
	return affected(res, err, "using reset token")
}

func (t *sqliteTx) ExpireResetTokens(ctx context.Context, user string, at time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, `UPDATE reset_tokens SET expires_at=? WHERE user=? AND used_at=0 AND expires_at>?`, ts(at), user, ts(at))
	if err != nil {
		return 0, fmt.Errorf("expiring reset tokens: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *sqliteTx) PruneResetTokens(ctx context.Context, before time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM reset_tokens WHERE expires_at < ?`, ts(before))
	if err != nil {
		return 0, fmt.Errorf("pruning reset tokens: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *sqliteTx) PutPlaceStates(ctx context.Context, deviceID, user string, ps []PlaceState) error {
	for _, p := range ps {
		_, err := t.tx.ExecContext(ctx, `INSERT INTO place_states (device_id, user, place, state, at, reported_at) VALUES (?,?,?,?,?,?)
			ON CONFLICT (device_id, user, place) DO UPDATE SET state=excluded.state, at=excluded.at, reported_at=excluded.reported_at`,
			deviceID, user, p.Place, p.State, ts(p.At), ts(p.ReportedAt))
		if constraint(err) {
			return fmt.Errorf("place states of %s on %s: no such binding: %w", user, deviceID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("storing place states: %w", err)
		}
	}
	return nil
}

func (t *sqliteTx) PlaceStates(ctx context.Context, user string) ([]PlaceState, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT device_id, place, state, at, reported_at FROM place_states WHERE user=?
		ORDER BY device_id, place`, user)
	if err != nil {
		return nil, fmt.Errorf("reading place states: %w", err)
	}
	defer rows.Close()
	var out []PlaceState
	for rows.Next() {
		p := PlaceState{User: user}
		var at, rep int64
		if err := rows.Scan(&p.DeviceID, &p.Place, &p.State, &at, &rep); err != nil {
			return nil, fmt.Errorf("reading place states: %w", err)
		}
		p.At, p.ReportedAt = fromTS(at), fromTS(rep)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PostgreSQL.

func (t *pgTx) UsersByEmail(ctx context.Context, email string) ([]User, error) {
	email = NormalizeEmail(email)
	if email == "" {
		return nil, nil
	}
	return t.users(ctx, `SELECT `+pgUserCols+` FROM users WHERE email = $1 ORDER BY name`, email)
}

func (t *pgTx) CreateResetToken(ctx context.Context, r ResetToken) error {
	// Checked first: a foreign key violation would abort the transaction.
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE name=$1`, r.User).Scan(&n); err != nil {
		return t.fail(err, "creating reset token")
	}
	if n == 0 {
		return fmt.Errorf("reset token for %s: %w", r.User, ErrNotFound)
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO reset_tokens (hash, user_name, created_at, expires_at) VALUES ($1,$2,$3,$4)`,
		r.Hash, r.User, pgTime(r.CreatedAt), pgTime(r.ExpiresAt))
	if err != nil {
		return t.fail(err, "creating reset token")
	}
	return nil
}

func (t *pgTx) ResetToken(ctx context.Context, hash []byte) (ResetToken, error) {
	r := ResetToken{Hash: hash}
	var created, expires, used pgtype.Timestamptz
	err := t.tx.QueryRow(ctx, `SELECT user_name, created_at, expires_at, used_at FROM reset_tokens WHERE hash=$1`, hash).
		Scan(&r.User, &created, &expires, &used)
	if err != nil {
		return ResetToken{}, t.pgNotFound(err, "reset token")
	}
	r.CreatedAt, r.ExpiresAt, r.UsedAt = fromPG(created), fromPG(expires), fromPG(used)
	return r, nil
}

func (t *pgTx) UseResetToken(ctx context.Context, hash []byte, at time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE reset_tokens SET used_at=$1 WHERE hash=$2 AND used_at IS NULL`, pgTime(at), hash)
	return t.pgAffected(tag, err, "using reset token")
}

func (t *pgTx) ExpireResetTokens(ctx context.Context, user string, at time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `UPDATE reset_tokens SET expires_at=$1 WHERE user_name=$2 AND used_at IS NULL AND expires_at>$1`,
		pgTime(at), user)
	if err != nil {
		return 0, t.fail(err, "expiring reset tokens")
	}
	return int(tag.RowsAffected()), nil
}

func (t *pgTx) PruneResetTokens(ctx context.Context, before time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM reset_tokens WHERE expires_at < $1`, pgTime(before))
	if err != nil {
		return 0, t.fail(err, "pruning reset tokens")
	}
	return int(tag.RowsAffected()), nil
}

func (t *pgTx) PutPlaceStates(ctx context.Context, deviceID, user string, ps []PlaceState) error {
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM bindings WHERE device_id=$1 AND user_name=$2`, deviceID, user).Scan(&n); err != nil {
		return t.fail(err, "storing place states")
	}
	if n == 0 {
		return fmt.Errorf("place states of %s on %s: no such binding: %w", user, deviceID, ErrNotFound)
	}
	for _, p := range ps {
		_, err := t.tx.Exec(ctx, `INSERT INTO place_states (device_id, user_name, place, state, at, reported_at) VALUES ($1,$2,$3,$4,$5,$6)
			ON CONFLICT (device_id, user_name, place) DO UPDATE SET state=excluded.state, at=excluded.at, reported_at=excluded.reported_at`,
			deviceID, user, p.Place, p.State, pgTime(p.At), pgTime(p.ReportedAt))
		if err != nil {
			return t.fail(err, "storing place states")
		}
	}
	return nil
}

func (t *pgTx) PlaceStates(ctx context.Context, user string) ([]PlaceState, error) {
	rows, err := t.tx.Query(ctx, `SELECT device_id, place, state, at, reported_at FROM place_states WHERE user_name=$1
		ORDER BY device_id, place`, user)
	if err != nil {
		return nil, t.fail(err, "reading place states")
	}
	defer rows.Close()
	var out []PlaceState
	for rows.Next() {
		p := PlaceState{User: user}
		var at, rep pgtype.Timestamptz
		if err := rows.Scan(&p.DeviceID, &p.Place, &p.State, &at, &rep); err != nil {
			return nil, t.fail(err, "reading place states")
		}
		p.At, p.ReportedAt = fromPG(at), fromPG(rep)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err, "reading place states")
	}
	return out, nil
}
