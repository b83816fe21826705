package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

// The load generators of issue 10's limits. Run them with:
//
//	go test ./cmd/lockstep-directory -run '^$' -bench 'PeakMemory|PerAddress|HandshakeFlood|UnknownUser' -benchtime 1x

// freePort returns a free loopback address.
func freePort(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// procStatusKiB reads a "VmHWM:"-style line of /proc/PID/status in KiB.
func procStatusKiB(b *testing.B, pid int, field string) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// BenchmarkArgon2PeakMemory runs 32 password checks at once against the
// production argon2id cost (3 passes over 64 MiB, 2 lanes) and the default
// budget (4 checks' worth, 257 MiB), and reports the process's peak RSS
// (VmHWM): the budget must bound all of it, not only argon2's blocks.
func BenchmarkArgon2PeakMemory(b *testing.B) {
	dir := b.TempDir()
	s := startB(b, dir, freePort(b), "--argon2-time", "3", "--argon2-memory-kib", "65536", "--argon2-threads", "2",
		"--lockout-threshold", "1000000")
	defer func() { _ = s.Process.Kill() }()
	cl, err := admin.FromDataDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	const pw = "Bench-Pass-1234"
	if _, err := cl.AddUser(b.Context(), admin.AddUserRequest{Name: "alice", Password: protocol.Secret(pw)}); err != nil {
		b.Fatal(err)
	}
	agents := make([]*testAgent, 4) // a connection runs at most 8 requests at once
	for i := range agents {
		agents[i] = enrollAgent(b, dir, "alice")
	}
	before := procStatusKiB(b, s.Process.Pid, "VmHWM")
	b.ResetTimer()
	start := time.Now()
	checks := 0
	for range b.N {
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := agents[i%4].call(protocol.TypeVerifyPassword, "", protocol.VerifyPasswordRequest{User: "alice", Password: protocol.Secret(pw)})
				if err != nil || res.Error != nil {
					b.Errorf("verify: %v %+v", err, res)
				}
			}()
		}
		wg.Wait()
		checks += 32
	}
	elapsed := time.Since(start)
	b.StopTimer()
	peak := procStatusKiB(b, s.Process.Pid, "VmHWM")
	b.ReportMetric(float64(peak)/1024, "MiB-peak-rss")
	b.ReportMetric(float64(before)/1024, "MiB-rss-before")
	b.ReportMetric(float64(checks)/elapsed.Seconds(), "checks/s")
}

// BenchmarkConnectionsPerAddress opens idle TCP connections from one
// address (127.0.0.3) until the directory closes them at once, with the
// default --max-conns-per-address, and reports how many it holds and how
// long an admin call from another address takes meanwhile.
func BenchmarkConnectionsPerAddress(b *testing.B) {
	dir := b.TempDir()
	addr := freePort(b)
	s := startB(b, dir, addr, "--max-conns-per-address", "1000")
	defer func() { _ = s.Process.Kill() }()
	cl, err := admin.FromDataDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	flooder := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	b.ResetTimer()
	var held, refused int
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range b.N {
		for range 1500 {
			c, err := flooder.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		// Closed ones read EOF at once; held ones (waiting for our TLS
		// hello) time out at the shared deadline, long before the
		// server's 10 s handshake timeout.
		time.Sleep(500 * time.Millisecond)
		deadline := time.Now().Add(time.Second)
		for _, c := range conns {
			// A deadline already past would report a timeout even with
			// the EOF waiting: give each read a few milliseconds.
			d := deadline
			if soon := time.Now().Add(5 * time.Millisecond); soon.After(d) {
				d = soon
			}
			_ = c.SetReadDeadline(d)
			if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeoutErr(err) {
				refused++
			} else {
				held++
			}
		}
	}
	start := time.Now()
	if _, err := cl.Users(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "ms-admin-call-while-flooded")
	b.StopTimer()
	b.ReportMetric(float64(held)/float64(b.N), "conns-held-per-address")
	b.ReportMetric(float64(refused)/float64(b.N), "conns-refused")
}

func isTimeoutErr(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// BenchmarkHandshakeFloodAudit floods the directory with failed agent
// handshakes (an unknown device id) from 8 goroutines for 10 s, with the
// per-address limit out of the way, each from a new loopback address
// (127.1.x.y) so that every one is a new source: the worst case for the
// noise gate, which then writes its global burst (100) and 20 a second.
// It reports handshakes a second and audit rows written a second (the
// rest are counted in audit_suppressed events each minute).
func BenchmarkHandshakeFloodAudit(b *testing.B) {
	dir := b.TempDir()
	s := startB(b, dir, freePort(b))
	defer func() { _ = s.Process.Kill() }()
	cl, err := admin.FromDataDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	info, tc := directoryTLS(b, dir)
	url := "wss" + strings.TrimPrefix(info.URL, "https") + protocol.AgentPath
	b.ResetTimer()
	var attempts, source atomic.Int64
	start := time.Now()
	for range b.N {
		stop := time.Now().Add(10 * time.Second)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					n := source.Add(1)
					local := net.IPv4(127, 1, byte(n>>8), byte(n))
					nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}
					d := websocket.Dialer{TLSClientConfig: tc, HandshakeTimeout: 10 * time.Second, NetDialContext: nd.DialContext}
					ws, _, err := d.Dial(url, nil)
					if err != nil {
						continue
					}
					_, _, _ = ws.ReadMessage() // hello
					env, _ := protocol.New(protocol.TypeAuth, protocol.Auth{DeviceID: "dev_NOT_ENROLLED", Signature: make([]byte, 64)})
					msg, _ := protocol.Encode(env)
					_ = ws.WriteMessage(websocket.TextMessage, msg)
					_, _, _ = ws.ReadMessage() // the 4401 close
					ws.Close()
					attempts.Add(1)
				}
			}()
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	evs, err := cl.Audit(b.Context(), admin.AuditQuery{Since: start, Limit: 100000})
	if err != nil {
		b.Fatal(err)
	}
	rows := 0
	for _, e := range evs {
		if e.Event == "device_auth_failed" {
			rows++
		}
	}
	b.ReportMetric(float64(attempts.Load())/elapsed.Seconds(), "handshakes/s")
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "audit-rows/s")
}

// BenchmarkUnknownUserTiming compares, at the production argon2id cost,
// how long a wrong password takes to be refused for a real user and for
// an unknown one, from a device bound to neither: both answer
// wrong_password after one argon2id check.
func BenchmarkUnknownUserTiming(b *testing.B) {
	dir := b.TempDir()
	s := startB(b, dir, freePort(b), "--argon2-time", "3", "--argon2-memory-kib", "65536", "--argon2-threads", "2")
	defer func() { _ = s.Process.Kill() }()
	cl, err := admin.FromDataDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cl.AddUser(b.Context(), admin.AddUserRequest{Name: "alice", Password: protocol.Secret("Bench-Pass-1234")}); err != nil {
		b.Fatal(err)
	}
	a := enrollAgent(b, dir)
	var real, unknown []time.Duration
	b.ResetTimer()
	for range b.N {
		for range 15 {
			for _, who := range []string{"alice", "nobody-here"} {
				start := time.Now()
				res, err := a.call(protocol.TypeVerifyPassword, "", protocol.VerifyPasswordRequest{User: who, Password: protocol.Secret("Wrong-Guess-1")})
				d := time.Since(start)
				if err != nil || res.Error == nil || res.Error.Code != protocol.CodeWrongPassword {
					b.Fatalf("%s: %v %+v", who, err, res)
				}
				if who == "alice" {
					real = append(real, d)
				} else {
					unknown = append(unknown, d)
				}
			}
		}
	}
	b.StopTimer()
	slices.Sort(real)
	slices.Sort(unknown)
	ms := func(ds []time.Duration, q int) float64 { return float64(ds[(len(ds)-1)*q/100].Microseconds()) / 1000 }
	b.ReportMetric(ms(real, 50), "ms-real-p50")
	b.ReportMetric(ms(unknown, 50), "ms-unknown-p50")
	b.ReportMetric(ms(real, 90), "ms-real-p90")
	b.ReportMetric(ms(unknown, 90), "ms-unknown-p90")
}
