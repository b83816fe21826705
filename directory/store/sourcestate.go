package store

import "time"

// SourceAccount is what the hub last recorded of a user's account in the
// source of truth (the built-in store or a directory behind it), so that a
// change the source reports can be told from one already known: the
// password's stamp, the lock it announced, and an intent while a change
// through Lockstep is in flight (a remote source's report of that change
// may come before the change's own commit, on this replica or another).
type SourceAccount struct {
	User string
	// Stamp is the source's password stamp (source.Account.Stamp) last
	// recorded; "" before the first.
	Stamp string
	// Locked and LockedUntil are the lock last announced to devices; a
	// zero LockedUntil with Locked means until an administrator unlocks.
	Locked      bool
	LockedUntil time.Time
	// ChangingUntil, while in the future, says a change through Lockstep
	// from ChangingDevice (idempotency key ChangingKey) is in flight, made
	// when the stamp was BeforeStamp.
	ChangingUntil  time.Time
	ChangingDevice string
	ChangingKey    string
	BeforeStamp    string
}
