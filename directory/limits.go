package directory

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter holds the token buckets. They are keyed so that nobody can
// block anybody else: password checks take a token from the calling
// device's bucket and from the target user's (one bucket for the user's
// own devices and another for every other device, so a stranger guessing
// cannot starve the user's Macs); what unauthenticated parties cause
// (failed handshakes, enrollments, failed admin calls) takes one from its
// source address's bucket, so one address cannot block the others.
type limiter struct {
	user, device, address keyedBuckets
}

func newLimiter(user, device, address Rate) *limiter {
	return &limiter{
		user:    keyedBuckets{r: user, m: make(map[string]*rate.Limiter)},
		device:  keyedBuckets{r: device, m: make(map[string]*rate.Limiter)},
		address: keyedBuckets{r: address, m: make(map[string]*rate.Limiter)},
	}
}

// userKey is the target-user bucket of a check from a device bound to
// the user or not.
func userKey(user string, bound bool) string {
	if bound {
		return user + "\x00bound"
	}
	return user + "\x00other"
}

// allowCheck takes a token for the device and one for the target user.
// When either is empty it returns how long to wait, and takes nothing.
func (l *limiter) allowCheck(device, user string, bound bool, now time.Time) (ok bool, retryAfter time.Duration) {
	rd := l.device.reserve(device, now)
	ru := l.user.reserve(userKey(user, bound), now)
	d := max(rd.DelayFrom(now), ru.DelayFrom(now))
	if d > 0 {
		rd.CancelAt(now)
		ru.CancelAt(now)
		return false, d
	}
	return true, 0
}

// allowKey takes a token from one bucket.
func (l *limiter) allowKey(k *keyedBuckets, key string, now time.Time) (bool, time.Duration) {
	r := k.reserve(key, now)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// empty reports whether key's bucket has no token now, without taking one.
func (l *limiter) empty(k *keyedBuckets, key string, now time.Time) (bool, time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.m[key]
	if b == nil || b.TokensAt(now) >= 1 {
		return false, 0
	}
	r := b.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return true, d
}

// maxBuckets bounds each set of buckets; past it, full ones are dropped.
const maxBuckets = 50000

type keyedBuckets struct {
	r  Rate
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func (k *keyedBuckets) reserve(key string, now time.Time) *rate.Reservation {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.m[key]
	if l == nil {
		if len(k.m) >= maxBuckets {
			k.prune(now)
		}
		l = rate.NewLimiter(rate.Every(k.r.Every), k.r.Burst)
		k.m[key] = l
	}
	return l.ReserveN(now, 1)
}

// prune drops buckets that have refilled completely: they hold no state.
func (k *keyedBuckets) prune(now time.Time) {
	for key, l := range k.m {
		if l.TokensAt(now) >= float64(k.r.Burst) {
			delete(k.m, key)
		}
	}
}

// retrySeconds rounds a wait up to whole seconds, at least one.
func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
