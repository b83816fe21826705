package directory

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter holds token buckets per account and per source address for
// password checks.
type limiter struct {
	account, address keyedBuckets
}

func newLimiter(account, address Rate) *limiter {
	return &limiter{
		account: keyedBuckets{r: account, m: make(map[string]*rate.Limiter)},
		address: keyedBuckets{r: address, m: make(map[string]*rate.Limiter)},
	}
}

// allow takes a token for the account and one for the address. When either
// is empty it returns how long to wait, and takes nothing.
func (l *limiter) allow(account, address string, now time.Time) (ok bool, retryAfter time.Duration) {
	ra := l.account.reserve(account, now)
	rb := l.address.reserve(address, now)
	d := max(ra.DelayFrom(now), rb.DelayFrom(now))
	if d > 0 {
		ra.CancelAt(now)
		rb.CancelAt(now)
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
		if len(k.m) >= 50000 {
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
