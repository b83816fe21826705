package directory

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/semaphore"
)

// hasher computes argon2id hashes under a semaphore weighted by memory, so
// that a burst of password checks waits instead of exhausting memory.
type hasher struct {
	params Argon2Params
	sem    *semaphore.Weighted
	budget int64
}

func newHasher(p Argon2Params, budgetKiB uint64) *hasher {
	b := int64(max(budgetKiB, uint64(p.MemoryKiB)))
	return &hasher{params: p, sem: semaphore.NewWeighted(b), budget: b}
}

const (
	saltLen = 16
	keyLen  = 32
)

var b64 = base64.RawStdEncoding

// compute runs argon2id under the semaphore.
func (h *hasher) compute(ctx context.Context, pw, salt []byte, p Argon2Params) ([]byte, error) {
	w := min(int64(p.MemoryKiB), h.budget)
	if err := h.sem.Acquire(ctx, w); err != nil {
		return nil, fmt.Errorf("waiting to hash: %w", err)
	}
	defer h.sem.Release(w)
	return argon2.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, keyLen), nil
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
	if p.Time == 0 || p.MemoryKiB == 0 || p.Threads == 0 || p.MemoryKiB > 4<<20 || p.Time > 64 {
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
