package directory

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/semaphore"
)

// hasher computes argon2id hashes under a semaphore weighted by memory, so
// that a burst of password checks waits instead of exhausting memory.
//
// The weight of a check is all the memory it costs until that memory can
// be used again: argon2's blocks, its per-check overhead (checkCostKiB),
// and the time after it returns until the garbage collector has reclaimed
// the blocks. A finished check's weight is therefore given back only after
// a collection: at once when another check waits for room (one forced
// collection covers every check finished before it), and within a second
// otherwise. Without that, the blocks of finished checks stay allocated
// until the heap doubles and 32 checks against a 256 MiB budget peaked at
// 545 MB.
type hasher struct {
	params Argon2Params
	sem    *semaphore.Weighted
	budget int64
	// dummy is a hash of random bytes with params: checked instead of a
	// real one for an unknown user, so that both cost the same.
	dummy string

	mu      sync.Mutex
	garbage int64 // weight of finished checks not yet collected
	since   time.Time
	waiting atomic.Int32
	kick    chan struct{}
	// checks counts argon2id computations by their parameters, so a test
	// can see that an unknown user costs what a real one does without
	// timing them.
	checks sync.Map // Argon2Params → *atomic.Int64
}

// checkOverheadKiB is a password check's memory beyond argon2's blocks
// (the block slice header and lane goroutines, blake2b state, the
// request), measured by BenchmarkArgon2PeakMemory in cmd/lockstep-directory.
const checkOverheadKiB = 256

// checkCostKiB is what one check with p weighs on the semaphore.
func checkCostKiB(p Argon2Params) uint64 { return uint64(p.MemoryKiB) + checkOverheadKiB }

// newHasher makes a hasher whose collector loop runs until done closes.
func newHasher(p Argon2Params, budgetKiB uint64, done <-chan struct{}) (*hasher, error) {
	b := int64(max(budgetKiB, checkCostKiB(p)))
	h := &hasher{params: p, sem: semaphore.NewWeighted(b), budget: b, kick: make(chan struct{}, 1)}
	go h.collect(done)
	pw := make([]byte, 32)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	var err error
	if h.dummy, err = h.Hash(context.Background(), pw); err != nil {
		return nil, err
	}
	return h, nil
}

const (
	saltLen = 16
	keyLen  = 32
)

var b64 = base64.RawStdEncoding

// compute runs argon2id under the semaphore.
func (h *hasher) compute(ctx context.Context, pw, salt []byte, p Argon2Params) ([]byte, error) {
	w := min(int64(checkCostKiB(p)), h.budget)
	if !h.sem.TryAcquire(w) {
		h.waiting.Add(1)
		h.wake()
		err := h.sem.Acquire(ctx, w)
		h.waiting.Add(-1)
		if err != nil {
			return nil, fmt.Errorf("waiting to hash: %w", err)
		}
	}
	key := argon2.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	n, _ := h.checks.LoadOrStore(p, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	h.retire(w)
	return key, nil
}

// checksWith reports how many argon2id computations used p.
func (h *hasher) checksWith(p Argon2Params) int64 {
	if n, ok := h.checks.Load(p); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// retire hands a finished check's weight to the collector loop.
func (h *hasher) retire(w int64) {
	h.mu.Lock()
	if h.garbage == 0 {
		h.since = time.Now()
	}
	h.garbage += w
	h.mu.Unlock()
	h.wake()
}

func (h *hasher) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// collect gives retired weight back after a garbage collection: forced at
// once when a check waits, otherwise after a second (by then the runtime
// has often collected anyway, and the forced collection is cheap).
func (h *hasher) collect(done <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-h.kick:
		case <-t.C:
		}
		h.mu.Lock()
		w, since := h.garbage, h.since
		if w == 0 || (h.waiting.Load() == 0 && time.Since(since) < time.Second) {
			h.mu.Unlock()
			continue
		}
		h.garbage = 0
		h.mu.Unlock()
		// Every check counted in w returned before this collection
		// starts, so it reclaims their blocks; FreeOSMemory also returns
		// the pages a new block cannot reuse (where small objects split
		// the free space) to the system instead of keeping them resident.
		debug.FreeOSMemory()
		h.sem.Release(w)
	}
}

// Hash returns the encoded argon2id hash of pw with the current parameters,
// in the PHC string format that records them.
func (h *hasher) Hash(ctx context.Context, pw []byte) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading salt: %w", err)
	}
	key, err := h.compute(ctx, pw, salt, h.params)
	if err != nil {
		return "", err
	}
	p := h.params
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether pw matches encoded, and whether the hash should be
// recomputed because its parameters are weaker than the current ones.
func (h *hasher) Verify(ctx context.Context, encoded string, pw []byte) (ok, rehash bool, err error) {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, false, err
	}
	got, err := h.compute(ctx, pw, salt, p)
	if err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(got, want) == 1
	rehash = p.Time < h.params.Time || p.MemoryKiB < h.params.MemoryKiB || p.Threads < h.params.Threads
	return ok, rehash, nil
}

// VerifyDummy spends what a check of a real user's password costs, for an
// unknown user; it never matches.
func (h *hasher) VerifyDummy(ctx context.Context, pw []byte) error {
	_, _, err := h.Verify(ctx, h.dummy, pw)
	return err
}

var errBadHash = errors.New("malformed password hash")

func decodeHash(s string) (p Argon2Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errBadHash
	}
	if p.Time == 0 || p.MemoryKiB == 0 || p.Threads == 0 || p.MemoryKiB > MaxArgon2MemoryKiB || p.Time > MaxArgon2Time {
		return p, nil, nil, errBadHash
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, errBadHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) == 0 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}
