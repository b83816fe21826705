package agent

import (
	"sync"

	"github.com/lockstep-dev/lockstep/agent/engine"
)

// bus fans events out to the local API's watchers. It never blocks the
// engine: a watcher that falls behind loses events, except that a pending
// status event is kept, so it always catches up with the latest state.
type bus struct {
	// onStatus, when set, runs before a status event reaches any watcher,
	// in the publisher's goroutine: the status file is rewritten there,
	// so whoever hears of a change finds the file already showing it. It
	// is set before the daemon runs and never changed.
	onStatus func()

	mu   sync.Mutex
	subs map[chan engine.Event]struct{}
}

func newBus() *bus { return &bus{subs: map[chan engine.Event]struct{}{}} }

func (b *bus) publish(ev engine.Event) {
	if ev.Type == engine.EventStatus && b.onStatus != nil {
		b.onStatus()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
			if ev.Type == engine.EventStatus {
				// Make room for the status: drop the oldest event.
				select {
				case <-ch:
				default:
				}
				select {
				case ch <- ev:
				default:
				}
			}
		}
	}
}

func (b *bus) subscribe() (<-chan engine.Event, func()) {
	ch := make(chan engine.Event, 64)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}
}
