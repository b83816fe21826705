package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/agent/engine"
	"github.com/lockstep-dev/lockstep/protocol"
)

// reportWait bounds one place report: it is best effort, and the next one
// replaces it.
const reportWait = 15 * time.Second

// reporter tells the directory what each account's places are, off the
// engine's path: the engine hands it the newest report per user and it
// sends them one at a time, dropping any that a newer one replaced.
type reporter struct {
	dir engine.Directory
	log *slog.Logger

	mu      sync.Mutex
	pending map[string][]protocol.PlaceReport
	kick    chan struct{}
}

func newReporter(dir engine.Directory, log *slog.Logger) *reporter {
	return &reporter{dir: dir, log: log, pending: map[string][]protocol.PlaceReport{}, kick: make(chan struct{}, 1)}
}

// add queues a report (engine.Options.Report); it never blocks.
func (r *reporter) add(user string, places []protocol.PlaceReport) {
	r.mu.Lock()
	r.pending[user] = places
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run sends queued reports until ctx ends.
func (r *reporter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		r.mu.Lock()
		batch := r.pending
		r.pending = map[string][]protocol.PlaceReport{}
		r.mu.Unlock()
		for user, ps := range batch {
			rctx, cancel := context.WithTimeout(ctx, reportWait)
			if err := r.dir.ReportPlaces(rctx, user, ps); err != nil {
				r.log.Debug("places not reported", "user", user, "err", err)
			}
			cancel()
		}
	}
}
