package store

import (
	"context"
	"fmt"
)

// schemaV3: what the hub recorded of each account in the source of truth
// (SourceAccount). Existing users start with the lock the users table
// holds and no stamp.
const schemaV3 = `
CREATE TABLE IF NOT EXISTS source_accounts (
	user TEXT PRIMARY KEY REFERENCES users(name) ON DELETE CASCADE,
	stamp TEXT NOT NULL DEFAULT '',
	locked INTEGER NOT NULL DEFAULT 0,
	locked_until INTEGER NOT NULL DEFAULT 0,
	changing_until INTEGER NOT NULL DEFAULT 0,
	changing_device TEXT NOT NULL DEFAULT '',
	changing_key TEXT NOT NULL DEFAULT '',
	before_stamp TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
INSERT OR IGNORE INTO source_accounts (user, locked, locked_until)
	SELECT name, locked_until != 0, locked_until FROM users;
`

func (t *sqliteTx) SourceAccount(ctx context.Context, user string) (SourceAccount, error) {
	a := SourceAccount{User: user}
	var until, changing int64
	err := t.tx.QueryRowContext(ctx, `SELECT stamp, locked, locked_until, changing_until, changing_device, changing_key, before_stamp
		FROM source_accounts WHERE user=?`, user).Scan(&a.Stamp, &a.Locked, &until, &changing, &a.ChangingDevice, &a.ChangingKey, &a.BeforeStamp)
	if err != nil {
		return SourceAccount{}, notFound(err, "source account "+user)
	}
	a.LockedUntil, a.ChangingUntil = fromTS(until), fromTS(changing)
	return a, nil
}

func (t *sqliteTx) PutSourceAccount(ctx context.Context, a SourceAccount) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO source_accounts (user, stamp, locked, locked_until, changing_until, changing_device,
		changing_key, before_stamp) VALUES (?,?,?,?,?,?,?,?)
		ON CONFLICT (user) DO UPDATE SET stamp=excluded.stamp, locked=excluded.locked, locked_until=excluded.locked_until,
		changing_until=excluded.changing_until, changing_device=excluded.changing_device, changing_key=excluded.changing_key,
		before_stamp=excluded.before_stamp`,
		a.User, a.Stamp, a.Locked, ts(a.LockedUntil), ts(a.ChangingUntil), a.ChangingDevice, a.ChangingKey, a.BeforeStamp)
	if constraint(err) {
		return fmt.Errorf("source account %s: no such user: %w", a.User, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("storing source account %s: %w", a.User, err)
	}
	return nil
}
