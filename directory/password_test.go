package directory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// testHasher makes a hasher that stops with the test.
func testHasher(t *testing.T, p Argon2Params, budgetKiB uint64) *hasher {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	h, err := newHasher(p, budgetKiB, done)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashFormatAndVerify(t *testing.T) {
	h := testHasher(t, testArgon2, 0)
	enc, err := h.Hash(t.Context(), []byte("Some-Password-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(enc, "Some-Password") {
		t.Fatalf("encoded hash %q", enc)
	}
	tests := []struct {
		name   string
		h      *hasher
		pw     string
		ok     bool
		rehash bool
	}{
		{"right", h, "Some-Password-1", true, false},
		{"wrong", h, "Some-Password-2", false, false},
		{"stronger params now", testHasher(t, Argon2Params{Time: 2, MemoryKiB: 64, Threads: 1}, 0), "Some-Password-1", true, true},
		{"weaker params now", testHasher(t, Argon2Params{Time: 1, MemoryKiB: 32, Threads: 1}, 0), "Some-Password-1", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := tt.h.Verify(t.Context(), enc, []byte(tt.pw))
			if err != nil || ok != tt.ok || rehash != tt.rehash {
				t.Fatalf("Verify = %v, %v, %v; want %v, %v", ok, rehash, err, tt.ok, tt.rehash)
			}
		})
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=0,t=1,p=1$AAAA$AAAA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$AAAA", "$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA"} {
		if _, _, err := h.Verify(t.Context(), bad, []byte("x")); err == nil {
			t.Errorf("Verify accepted malformed hash %q", bad)
		}
	}
	if err := h.VerifyDummy(t.Context(), []byte("Some-Password-1")); err != nil {
		t.Fatal(err)
	}
	// The largest pass count a server accepts makes hashes it can verify.
	most := testHasher(t, Argon2Params{Time: MaxArgon2Time, MemoryKiB: 8, Threads: 1}, 0)
	enc, err = most.Hash(t.Context(), []byte("Some-Password-1"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := most.Verify(t.Context(), enc, []byte("Some-Password-1")); !ok || err != nil {
		t.Fatalf("hash with time %d: %v %v", MaxArgon2Time, ok, err)
	}
}

// TestHashSemaphore checks that a hash waits while the memory budget is in
// use, instead of allocating beyond it.
func TestHashSemaphore(t *testing.T) {
	h := testHasher(t, testArgon2, 2*checkCostKiB(testArgon2))
	if err := h.sem.Acquire(t.Context(), h.budget); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, []byte("pw")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hash with the budget exhausted = %v, want to wait until the deadline", err)
	}
	h.sem.Release(h.budget)
	for range 10 { // more than the budget holds at once: each waits for the collector
		if _, err := h.Hash(t.Context(), []byte("pw")); err != nil {
			t.Fatal(err)
		}
	}
	// A finished check's weight comes back (after a collection).
	waitFor(t, "the budget to come back", func() bool {
		if !h.sem.TryAcquire(h.budget) {
			return false
		}
		h.sem.Release(h.budget)
		return true
	})
	// A hash whose memory exceeds the whole budget still runs, alone.
	big := testHasher(t, Argon2Params{Time: 1, MemoryKiB: 256, Threads: 1}, 64)
	if _, err := big.Hash(t.Context(), []byte("pw")); err != nil {
		t.Fatal(err)
	}
}

func TestTOTPMatchSteps(t *testing.T) {
	secret := []byte("12345678901234567890") // RFC 6238 test key
	at := time.Unix(59, 0)                   // RFC 6238: 94287082 (8 digits) → 287082 (6 digits)
	step, ok := totpMatch(secret, "287082", at)
	if !ok || step != 1 {
		t.Fatalf("RFC 6238 vector: step %d ok %v", step, ok)
	}
	if _, ok := totpMatch(secret, "287082", at.Add(90*time.Second)); ok {
		t.Fatal("code accepted three steps later")
	}
	if _, ok := totpMatch(secret, "28708", at); ok {
		t.Fatal("short code accepted")
	}
}

func TestSealing(t *testing.T) {
	k, err := newSecrets(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := k.seal("alice", []byte("totp-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "totp-secret") {
		t.Fatal("sealed secret contains the plaintext")
	}
	if pt, err := k.open("alice", sealed); err != nil || string(pt) != "totp-secret" {
		t.Fatalf("open = %q, %v", pt, err)
	}
	if _, err := k.open("mallory", sealed); err == nil {
		t.Fatal("a secret sealed for alice opened for mallory")
	}
}
