package directory

import (
	"context"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/directory/store"
	"golang.org/x/time/rate"
)

// Noise is what anyone, or any enrolled device, can make the directory
// record in bulk: failed handshakes, enrollments and admin calls, refused
// (rate-limited) requests, reconnections. Every such audit event passes
// noiseGate before it is written: per key (the event and its source) the
// first noisePerKey events in a burst are written and then one per
// noiseKeyEvery, and all keys together at most noiseGlobal.Burst at once
// and noiseGlobal a second. The rest are counted and written every
// noiseFlushEvery as one "audit_suppressed" event per key with the count
// (at most noiseMaxSummaries; beyond them one event with the total). While
// the disk is nearly full (Config.DiskReserveMiB) no noise is written at
// all, only counted and logged, so that administrators' writes keep
// working.
const (
	noisePerKey       = 3
	noiseKeyEvery     = time.Minute
	noiseFlushEvery   = time.Minute
	noiseMaxKeys      = 10000
	noiseMaxSummaries = 100
)

var noiseGlobal = Rate{Every: 50 * time.Millisecond, Burst: 100} // 20 a second

// noiseGate decides which noisy audit events are written.
type noiseGate struct {
	mu      sync.Mutex
	keys    map[string]*rate.Limiter
	global  *rate.Limiter
	counts  map[string]*suppressed
	dropped int // counted beyond noiseMaxKeys
}

// suppressed is the count of one key's events not written.
type suppressed struct {
	event, source string
	n             int
}

func newNoiseGate() *noiseGate {
	return &noiseGate{keys: map[string]*rate.Limiter{}, counts: map[string]*suppressed{},
		global: rate.NewLimiter(rate.Every(noiseGlobal.Every), noiseGlobal.Burst)}
}

// allow reports whether an event of this kind from source may be written
// now; when not, it is counted.
func (g *noiseGate) allow(event, source string, now time.Time, lowDisk bool) bool {
	key := event + "\x00" + source
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.keys[key]
	if l == nil && len(g.keys) < noiseMaxKeys {
		l = rate.NewLimiter(rate.Every(noiseKeyEvery), noisePerKey)
		g.keys[key] = l
	}
	if !lowDisk && l != nil && l.TokensAt(now) >= 1 && g.global.AllowN(now, 1) {
		l.AllowN(now, 1)
		return true
	}
	if c := g.counts[key]; c != nil {
		c.n++
	} else if len(g.counts) < noiseMaxKeys {
		g.counts[key] = &suppressed{event: event, source: source, n: 1}
	} else {
		g.dropped++
	}
	return false
}

// take returns the counts gathered since the last take and forgets
// buckets that have refilled.
func (g *noiseGate) take(now time.Time) ([]*suppressed, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*suppressed, 0, len(g.counts))
	for _, c := range g.counts {
		out = append(out, c)
	}
	dropped := g.dropped
	g.counts, g.dropped = map[string]*suppressed{}, 0
	for k, l := range g.keys {
		if l.TokensAt(now) >= noisePerKey {
			delete(g.keys, k)
		}
	}
	return out, dropped
}

// noise records a noisy audit event through the gate and the batcher.
func (s *Server) noise(a actor, event, user string, detail map[string]string) {
	source := a.addr
	switch {
	case a.device != "":
		source = a.device
	case a.name != "":
		// A signed-in administrator's refusals are theirs, not their
		// address's (several may share one).
		source = a.who() + "@" + a.addr
	}
	if !s.noiseGate.allow(event, source, s.now(), s.lowDisk()) {
		return
	}
	s.auditAsync(a, event, user, detail)
}

// flushNoise writes the counts of suppressed noise as audit events, or,
// while the disk is nearly full, logs them.
func (s *Server) flushNoise() {
	now := s.now()
	counts, dropped := s.noiseGate.take(now)
	if len(counts) == 0 && dropped == 0 {
		return
	}
	sort.Slice(counts, func(i, j int) bool { return counts[i].n > counts[j].n })
	total := dropped
	for _, c := range counts {
		total += c.n
	}
	if s.lowDisk() {
		s.log.Warn("audit events not written: the disk is nearly full", "events", total, "kinds", len(counts),
			"reserve_mib", s.cfg.DiskReserveMiB)
		return
	}
	rest := dropped
	var evs []store.AuditEvent
	for i, c := range counts {
		if i >= noiseMaxSummaries {
			rest += c.n
			continue
		}
		evs = append(evs, store.AuditEvent{At: now, Event: "audit_suppressed", Actor: "system", Source: c.source,
			Detail: map[string]string{"event": c.event, "count": strconv.Itoa(c.n), "window": noiseFlushEvery.String()}})
	}
	if rest > 0 {
		evs = append(evs, store.AuditEvent{At: now, Event: "audit_suppressed", Actor: "system",
			Detail: map[string]string{"event": "*", "count": strconv.Itoa(rest), "window": noiseFlushEvery.String()}})
	}
	s.bg.add(func(ctx context.Context, tx store.Tx) error {
		for _, e := range evs {
			if err := tx.Audit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	s.warnEvery("noise", "audit events suppressed", "events", total, "kinds", len(counts))
}

// rateLog logs a repeated warning at most once per rateLogEvery per key,
// with how many times it happened meanwhile.
type rateLog struct {
	log  *slog.Logger
	mu   sync.Mutex
	last map[string]time.Time
	n    map[string]int
}

const rateLogEvery = 10 * time.Second

func newRateLog(log *slog.Logger) *rateLog {
	return &rateLog{log: log, last: map[string]time.Time{}, n: map[string]int{}}
}

// warnEvery logs msg at warn level with args and "count", the number of
// times it happened since it was last logged.
func (s *Server) warnEvery(key, msg string, args ...any) {
	r := s.rateLog
	now := time.Now()
	r.mu.Lock()
	r.n[key]++
	if now.Sub(r.last[key]) < rateLogEvery {
		r.mu.Unlock()
		return
	}
	n := r.n[key]
	r.last[key], r.n[key] = now, 0
	if len(r.last) > 1000 {
		for k, t := range r.last {
			if now.Sub(t) > time.Minute {
				delete(r.last, k)
				delete(r.n, k)
			}
		}
	}
	r.mu.Unlock()
	r.log.Warn(msg, append(args, "count", n)...)
}
