package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesBadFlags (issue 10, item 8): every serve flag is
// checked at start, with a message naming it, before anything listens or
// admin.json is written. Before, --argon2-time 65 started (and the next
// login re-hashed with a value the decoder refuses, locking the user out
// for good), --argon2-memory-kib wrapped around, a non-positive
// --ping-interval or --scan-interval panicked after "listening" and left
// admin.json behind, and --account-rate-every 0 turned a limit off.
func TestServeRefusesBadFlags(t *testing.T) {
	tests := []struct {
		flag, value string
	}{
		{"argon2-time", "65"},
		{"argon2-time", "0"},
		{"argon2-memory-kib", "4294967360"}, // 2^32 + 64: wraps to 64 in a uint32
		{"argon2-memory-kib", "4"},
		{"argon2-threads", "256"},
		{"argon2-threads", "0"},
		{"hash-memory-kib", "16"},
		{"ping-interval", "0s"},
		{"ping-interval", "-5s"},
		{"scan-interval", "-1h"},
		{"account-rate-every", "0"},
		{"account-rate-burst", "0"},
		{"device-rate-every", "-1s"},
		{"address-rate-burst", "-3"},
		{"lockout-threshold", "0"},
		{"lockout-window", "0s"},
		{"lockout-duration", "-1m"},
		{"max-conns-per-address", "0"},
		{"max-conns", "-1"},
		{"request-timeout", "0s"},
		{"audit-retention", "-24h"},
		{"idempotency-retention", "0s"},
		{"disk-reserve-mib", "-1"},
		{"shutdown-timeout", "0s"},
		{"reset-link-ttl", "0s"},
		{"reset-link-ttl", "25h"},
		{"smtp-from", "lockstep@example.com"}, // without --smtp-url
		{"smtp-url", "http://mail.example.com"},
		{"smtp-password-file", "/nonexistent"}, // without --smtp-url
	}
	for _, tt := range tests {
		t.Run(tt.flag+"="+tt.value, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var stdout, stderr syncBuf
			done := make(chan int, 1)
			go func() {
				done <- Run(ctx, []string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--argon2-memory-kib", "64",
					"--argon2-time", "1", "--argon2-threads", "1", "--" + tt.flag, tt.value}, strings.NewReader(""), &stdout, &stderr)
			}()
			var code int
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				cancel()
				<-done
				t.Fatalf("serve accepted --%s %s and ran:\n%s", tt.flag, tt.value, stdout.String())
			}
			if code != 2 || !strings.Contains(stderr.String(), "--"+tt.flag) {
				t.Fatalf("exit %d, stderr %q: want 2 and a message naming --%s", code, stderr.String(), tt.flag)
			}
			if _, err := os.Stat(filepath.Join(dir, "admin.json")); err == nil {
				t.Fatal("admin.json written")
			}
		})
	}
	// The boundaries themselves are accepted.
	s := start(t, t.TempDir(), "--argon2-time", "64", "--argon2-memory-kib", "8", "--ping-interval", "10ms")
	if _, se, code := run(t, "Initial-Pass-77!\n", "user", "add", "alice", "--data", s.dir); code != 0 {
		t.Fatalf("user add with argon2 time 64: %s", se)
	}
	s.stop()
}
