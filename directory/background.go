package directory

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// batcher groups small writes that may trail their cause by a moment
// (device last-seen times, authentication audit events, push
// acknowledgements) into one transaction, so that 10,000 agents
// reconnecting do not cost 10,000 commits. close flushes what is queued.
type batcher struct {
	st  store.Store
	log *slog.Logger
	mu  sync.Mutex
	q   []func(context.Context, store.Tx) error
	// fmu makes a take-and-flush atomic, so sync waits for a flush in
	// progress.
	fmu  sync.Mutex
	kick chan struct{}
	done chan struct{}
	shut bool
}

const batchDelay = 50 * time.Millisecond

func newBatcher(st store.Store, log *slog.Logger) *batcher {
	b := &batcher{st: st, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go b.run()
	return b
}

// add queues a write. After close it runs at once in its own transaction.
func (b *batcher) add(fn func(context.Context, store.Tx) error) {
	b.mu.Lock()
	if b.shut {
		b.mu.Unlock()
		b.flush([]func(context.Context, store.Tx) error{fn})
		return
	}
	b.q = append(b.q, fn)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

func (b *batcher) run() {
	defer close(b.done)
	for range b.kick {
		time.Sleep(batchDelay) // let a burst gather
		b.fmu.Lock()
		b.mu.Lock()
		q := b.q
		b.q = nil
		shut := b.shut
		b.mu.Unlock()
		b.flush(q)
		b.fmu.Unlock()
		if shut {
			return
		}
	}
}

func (b *batcher) flush(q []func(context.Context, store.Tx) error) {
	if len(q) == 0 {
		return
	}
	ctx := context.Background()
	err := b.st.Update(ctx, func(tx store.Tx) error {
		for _, fn := range q {
			if err := fn(ctx, tx); err != nil {
				b.log.Warn("batched write failed", "err", err)
			}
		}
		return nil
	})
	if err != nil {
		b.log.Error("batch not committed", "count", len(q), "err", err)
	}
}

// sync writes everything queued so far before returning, so that a
// reader (the admin API) sees it.
func (b *batcher) sync() {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	b.mu.Lock()
	q := b.q
	b.q = nil
	b.mu.Unlock()
	b.flush(q)
}

// close flushes everything queued and stops the batcher.
func (b *batcher) close() {
	b.mu.Lock()
	b.shut = true
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	<-b.done
	b.sync()
}

// scanLoop runs the expiry scanner and the retention pruning every
// ScanInterval, and writes the counts of suppressed noise every
// noiseFlushEvery.
func (s *Server) scanLoop() {
	t := time.NewTicker(s.cfg.ScanInterval)
	defer t.Stop()
	flush := time.NewTicker(noiseFlushEvery)
	defer flush.Stop()
	for {
		if err := s.scanExpiry(s.ctx); err != nil {
			s.log.Error("expiry scan failed", "err", err)
		}
		s.prune(s.ctx)
		for {
			select {
			case <-s.stopScan:
				return
			case <-flush.C:
				s.flushNoise()
				continue
			case <-t.C:
			}
			break
		}
	}
}

// pruneBatch bounds one pruning transaction, so that a large backlog is
// deleted in steps that never hold the writer for long.
const pruneBatch = 5000

// prune deletes idempotency records and audit events older than their
// retention.
func (s *Server) prune(ctx context.Context) {
	now := s.now()
	if err := s.st.Update(ctx, func(tx store.Tx) error {
		_, err := tx.PruneSessions(ctx, now.Add(-s.cfg.WebIdleTimeout), now.Add(-s.cfg.WebMaxAge))
		return err
	}); err != nil {
		s.log.Error("web sessions not pruned", "err", err)
	}
	if err := s.st.Update(ctx, func(tx store.Tx) error {
		// A reset link is kept a day past its end, so that using it late
		// is answered (and audited) as an expired link, not an unknown one.
		if _, err := tx.PruneResetTokens(ctx, now.Add(-24*time.Hour)); err != nil {
			return err
		}
		return tx.PruneIdempotency(ctx, now.Add(-s.cfg.IdempotencyRetention))
	}); err != nil {
		s.log.Error("idempotency records not pruned", "err", err)
	}
	total := 0
	for {
		var n int
		err := s.st.Update(ctx, func(tx store.Tx) error {
			var err error
			n, err = tx.PruneAudit(ctx, now.Add(-s.cfg.AuditRetention), pruneBatch)
			return err
		})
		if err != nil {
			s.log.Error("audit log not pruned", "err", err)
			return
		}
		total += n
		if n < pruneBatch || ctx.Err() != nil {
			break
		}
	}
	if total > 0 {
		s.log.Info("audit log pruned", "events", total, "retention", s.cfg.AuditRetention.String())
	}
}

// scanExpiry pushes expiry_approaching to the devices of every user whose
// password expires within the policy's warning window, at most once a day
// per user and device.
func (s *Server) scanExpiry(ctx context.Context) error {
	pol := s.Policy()
	if pol.MaxAgeDays == 0 || pol.ExpiryWarningDays == 0 {
		return nil
	}
	now := s.now()
	maxAge := time.Duration(pol.MaxAgeDays) * 24 * time.Hour
	warn := time.Duration(pol.ExpiryWarningDays) * 24 * time.Hour
	// Changed before now+warn-maxAge means expiring before now+warn.
	var users []store.User
	if err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		users, err = tx.UsersChangedBefore(ctx, now.Add(warn-maxAge))
		return err
	}); err != nil {
		return err
	}
	for _, u := range users {
		exp := u.PasswordChangedAt.Add(maxAge)
		if !exp.After(now) {
			continue // already expired: the account state says so
		}
		days := int(exp.Sub(now).Hours() / 24)
		body, err := json.Marshal(protocol.ExpiryApproaching{User: u.Name, ExpiresAt: exp, DaysLeft: days})
		if err != nil {
			return err
		}
		err = s.update(ctx, func(tx store.Tx, out *outbox) error {
			bs, err := tx.UserBindings(ctx, u.Name)
			if err != nil {
				return err
			}
			for _, b := range bs {
				if !b.ExpiryWarnedAt.IsZero() && now.Sub(b.ExpiryWarnedAt) < 24*time.Hour {
					continue
				}
				if err := out.addRaw(ctx, tx, b.DeviceID, protocol.TypeExpiryApproaching, body); err != nil {
					return err
				}
				if err := tx.SetExpiryWarned(ctx, b.DeviceID, u.Name, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
