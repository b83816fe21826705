package engine

import (
	"sync"
	"time"
)

// ThrottleConfig bounds the engine's own failed password attempts against
// the directory, per directory user. Keep MaxFailures below the directory's
// lockout threshold so that mistyping in the menu bar can never lock the
// user out of every other service.
type ThrottleConfig struct {
	MaxFailures int
	Window      time.Duration
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	if c.MaxFailures <= 0 {
		c.MaxFailures = 3
	}
	if c.Window <= 0 {
		c.Window = 15 * time.Minute
	}
	return c
}

type throttle struct {
	cfg   ThrottleConfig
	now   func() time.Time
	mu    sync.Mutex
	fails map[string][]time.Time
}

func newThrottle(cfg ThrottleConfig, now func() time.Time) *throttle {
	return &throttle{cfg: cfg.withDefaults(), now: now, fails: map[string][]time.Time{}}
}

// allow reports whether another attempt may be sent for user, and if not,
// how long until it may.
func (t *throttle) allow(user string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	recent := t.fails[user][:0]
	for _, at := range t.fails[user] {
		if now.Sub(at) < t.cfg.Window {
			recent = append(recent, at)
		}
	}
	t.fails[user] = recent
	if len(recent) < t.cfg.MaxFailures {
		return 0, true
	}
	return recent[0].Add(t.cfg.Window).Sub(now), false
}

// setMax changes the failure budget.
func (t *throttle) setMax(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cfg.MaxFailures = n
}

func (t *throttle) fail(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fails[user] = append(t.fails[user], t.now())
}

func (t *throttle) success(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, user)
}
