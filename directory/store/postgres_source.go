package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgSchemaV3: what the hub recorded of each account in the source of
// truth (SourceAccount); existing users start with the lock the users
// table holds and no stamp.
const pgSchemaV3 = `CREATE TABLE source_accounts (
	user_name text PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE,
	stamp text NOT NULL DEFAULT '',
	locked boolean NOT NULL DEFAULT false,
	locked_until timestamptz,
	changing_until timestamptz,
	changing_device text NOT NULL DEFAULT '',
	changing_key text NOT NULL DEFAULT '',
	before_stamp text NOT NULL DEFAULT ''
);
INSERT INTO source_accounts (user_name, locked, locked_until)
	SELECT name, locked_until IS NOT NULL, locked_until FROM users;`

func (t *pgTx) SourceAccount(ctx context.Context, user string) (SourceAccount, error) {
	a := SourceAccount{User: user}
	var until, changing pgtype.Timestamptz
	err := t.tx.QueryRow(ctx, `SELECT stamp, locked, locked_until, changing_until, changing_device, changing_key, before_stamp
		FROM source_accounts WHERE user_name=$1`, user).Scan(&a.Stamp, &a.Locked, &until, &changing, &a.ChangingDevice, &a.ChangingKey, &a.BeforeStamp)
	if err != nil {
		return SourceAccount{}, t.pgNotFound(err, "source account "+user)
	}
	a.LockedUntil, a.ChangingUntil = fromPG(until), fromPG(changing)
	return a, nil
}

func (t *pgTx) PutSourceAccount(ctx context.Context, a SourceAccount) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO source_accounts (user_name, stamp, locked, locked_until, changing_until, changing_device,
		changing_key, before_stamp) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
		ON CONFLICT (user_name) DO UPDATE SET stamp=excluded.stamp, locked=excluded.locked, locked_until=excluded.locked_until,
		changing_until=excluded.changing_until, changing_device=excluded.changing_device, changing_key=excluded.changing_key,
		before_stamp=excluded.before_stamp`,
		a.User, a.Stamp, a.Locked, pgNullTime(a.LockedUntil), pgNullTime(a.ChangingUntil), a.ChangingDevice, a.ChangingKey, a.BeforeStamp)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation
		_ = t.fail(err, "storing source account "+a.User)
		return fmt.Errorf("source account %s: no such user: %w", a.User, ErrNotFound)
	}
	if err != nil {
		return t.fail(err, "storing source account "+a.User)
	}
	return nil
}
