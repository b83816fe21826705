package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/internal/tools/pgtest"
	"github.com/lockstep-dev/lockstep/protocol"
)

// BenchmarkReplicaResetPush runs two lockstep-directory processes on one
// PostgreSQL database (the throwaway server of pgtest), connects n agents
// to replica B, and resets their users through replica A's admin API: it
// reports the time from A's reset response to the push's arrival on B
// (NOTIFY, LISTEN, outbox read), and the same through B's own admin API
// for comparison. Run with:
//
//	go test ./cmd/lockstep-directory -run '^$' -bench ReplicaResetPush -benchtime 1x
//
// LOCKSTEP_BENCH_AGENTS sets n (default 2000).
func BenchmarkReplicaResetPush(b *testing.B) {
	n, resets := 2000, 200
	if v, err := strconv.Atoi(os.Getenv("LOCKSTEP_BENCH_AGENTS")); err == nil && v >= resets {
		n = v
	}
	url := pgtest.Database(b)
	urlFile := filepath.Join(b.TempDir(), "db.url")
	if err := os.WriteFile(urlFile, []byte(url+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	freeAddr := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	dirA, dirB := b.TempDir(), b.TempDir()
	sa := startB(b, dirA, freeAddr(), "--database-url-file", urlFile)
	defer func() { _ = sa.Process.Kill() }()
	// B shares A's master key and CA (so agents trust one CA for both).
	for _, f := range []string{"server.key", "ca.pem", "ca-key.pem"} {
		data, err := os.ReadFile(filepath.Join(dirA, f))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	sb := startB(b, dirB, freeAddr(), "--database-url-file", urlFile)
	defer func() { _ = sb.Process.Kill() }()
	clA, err := admin.FromDataDir(dirA)
	if err != nil {
		b.Fatal(err)
	}
	f := newFleet(b, dirB, n)
	defer f.close()
	b.ResetTimer()
	start := time.Now()
	f.parallel(func(i int) {
		if err := f.connect(i); err != nil {
			b.Error(err)
		}
	})
	b.ReportMetric(time.Since(start).Seconds(), "s-to-connect")
	if st, err := f.cl.Stats(b.Context(), false); err != nil || st.Connections != n {
		b.Fatalf("replica B: %+v %v, want %d connections", st, err, n)
	}
	for i := range resets {
		name := fmt.Sprintf("user%d", i)
		if _, err := clA.AddUser(b.Context(), admin.AddUserRequest{Name: name, Password: protocol.Secret("Bench-Pass-1234")}); err != nil {
			b.Fatal(err)
		}
		if _, err := clA.AssignDevice(b.Context(), f.devs[i].id, name); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	// measure returns, sorted, the time from the reset response to the
	// push and from the reset request to the push.
	measure := func(cl *admin.Client) (lat, full []time.Duration) {
		for i := range resets {
			began := time.Now()
			_, err := cl.ResetPassword(b.Context(), fmt.Sprintf("user%d", i), admin.ResetRequest{Temporary: true})
			done := time.Now()
			if err != nil {
				b.Fatal(err)
			}
			select {
			case at := <-f.pushes[i]:
				lat = append(lat, max(0, at.Sub(done)))
				full = append(full, at.Sub(began))
			case <-time.After(10 * time.Second):
				b.Fatalf("no push for user%d", i)
			}
		}
		slices.Sort(lat)
		slices.Sort(full)
		return lat, full
	}
	cross, crossFull := measure(clA)
	same, sameFull := measure(f.cl)
	b.StopTimer()
	ms := func(ds []time.Duration, q int) float64 { return float64(ds[len(ds)*q/100].Microseconds()) / 1000 }
	b.ReportMetric(ms(cross, 50), "ms-cross-replica-p50")
	b.ReportMetric(ms(cross, 99), "ms-cross-replica-p99")
	b.ReportMetric(ms(crossFull, 99), "ms-cross-request-to-push-p99")
	b.ReportMetric(ms(same, 99), "ms-same-replica-p99")
	b.ReportMetric(ms(sameFull, 99), "ms-same-request-to-push-p99")
}
