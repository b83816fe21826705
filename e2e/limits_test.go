package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/agent/api"
)

var flood struct {
	once sync.Once
	bin  string
	err  error
}

// floodBin builds internal/tools/localflood into the shared binary
// directory, once.
func floodBin(t testing.TB) string {
	t.Helper()
	flood.once.Do(func() {
		flood.bin = filepath.Join(bin.dir, "localflood")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", flood.bin, "github.com/lockstep-dev/lockstep/internal/tools/localflood")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			flood.err = fmt.Errorf("building localflood: %v\n%s", err, out)
		}
	})
	if flood.err != nil {
		t.Fatal(flood.err)
	}
	return flood.bin
}

// floodHeld is what localflood -hold reports.
type floodHeld struct {
	WatchesHeld    int    `json:"watches_held"`
	WatchesRefused int    `json:"watches_refused"`
	WatchErrors    int    `json:"watch_errors"`
	ConnsHeld      int    `json:"conns_held"`
	ConnsRefused   int    `json:"conns_refused"`
	FirstError     string `json:"first_error"`
}

// floodTiming is what localflood -status reports.
type floodTiming struct {
	N          int     `json:"n"`
	Errors     int     `json:"errors"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	FirstError string  `json:"first_error"`
}

// holdAs runs localflood -hold as uid against m's socket and returns what
// it holds; it holds it until the test ends.
func holdAs(t testing.TB, m *mac, uid, watches, conns int) floodHeld {
	t.Helper()
	cmd := exec.Command(floodBin(t), "-socket", m.socket, "-hold", "-watches", fmt.Sprint(watches), "-conns", fmt.Sprint(conns))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: 20}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		t.Fatalf("localflood: %v", err)
	}
	var h floodHeld
	if err := json.Unmarshal(line, &h); err != nil {
		t.Fatalf("localflood said %q: %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	return h
}

// statusAs times n status requests made as uid.
func statusAs(t testing.TB, m *mac, uid, n int) floodTiming {
	t.Helper()
	cmd := exec.Command(floodBin(t), "-socket", m.socket, "-status", fmt.Sprint(n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: 20}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("localflood -status: %v", err)
	}
	var tm floodTiming
	if err := json.Unmarshal(out, &tm); err != nil {
		t.Fatalf("localflood said %q: %v", out, err)
	}
	return tm
}

// 6. alice tries to hold 20,000 watch streams and then 20,000 idle
// connections (as many as the attack in the issue): she gets her share,
// the rest is refused, and bob's `lockstep status`, root's, and alice's
// own menu bar keep their answers.
func TestOneUserCannotStarveTheLocalAPI(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act as two local users")
	}
	u := newUser(t, shared, false)
	m := newMac(t, shared, u)
	const aliceUID, bobUID = 502, 503
	h := holdAs(t, m, aliceUID, 20_000, 20_000)
	t.Logf("alice holds %+v", h)
	lim := api.DefaultLimits
	if h.WatchesHeld > lim.WatchesPerUID || h.WatchesHeld+h.ConnsHeld > lim.ConnsPerUID {
		t.Errorf("alice holds %d watch streams and %d idle connections; her share is %d streams and %d connections",
			h.WatchesHeld, h.ConnsHeld, lim.WatchesPerUID, lim.ConnsPerUID)
	}
	if h.WatchesHeld == 0 {
		t.Errorf("alice could not open a single watch stream: %+v", h)
	}
	start := time.Now()
	r := m.cliAs(bobUID, "", "status")
	if r.code != 0 {
		t.Fatalf("bob's status while alice floods (%v): %s", time.Since(start), r)
	}
	if tm := statusAs(t, m, bobUID, 20); tm.Errors > 0 {
		t.Fatalf("bob's status requests while alice floods: %+v", tm)
	}
	if st := m.status(); len(st.Accounts) == 0 {
		t.Fatalf("root's status: %+v", st)
	}
}

// BenchmarkLocalAPILimits measures what one local user can hold of
// lockstepd's local API before it refuses (watch streams and connections
// per uid), and what another user's status requests take meanwhile, against
// the same requests on a quiet daemon. Run it as root with
//
//	go test ./e2e -run '^$' -bench LocalAPILimits -benchtime 1x
func BenchmarkLocalAPILimits(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("needs root to act as two local users")
	}
	const aliceUID, bobUID, attempts, samples = 502, 503, 20_000, 200
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		u := newUser(b, shared, false)
		m := newMac(b, shared, u)
		quiet := statusAs(b, m, bobUID, samples)
		b.StartTimer()
		h := holdAs(b, m, aliceUID, attempts, attempts)
		busy := statusAs(b, m, bobUID, samples)
		b.StopTimer()
		b.ReportMetric(float64(h.WatchesHeld), "watches-held/uid")
		b.ReportMetric(float64(h.WatchesHeld+h.ConnsHeld), "conns-held/uid")
		b.ReportMetric(quiet.P99ms, "other-status-p99-ms-quiet")
		b.ReportMetric(busy.P99ms, "other-status-p99-ms-flooded")
		b.ReportMetric(float64(busy.Errors), "other-status-errors")
		fmt.Printf("one uid tried %d watch streams and %d connections: held %d streams and %d connections in all (limits %+v)\n",
			attempts, attempts, h.WatchesHeld, h.WatchesHeld+h.ConnsHeld, api.DefaultLimits)
		fmt.Printf("another uid's status, %d requests: quiet p50 %.2f ms p99 %.2f ms; while flooded p50 %.2f ms p99 %.2f ms max %.2f ms, %d errors\n",
			samples, quiet.P50ms, quiet.P99ms, busy.P50ms, busy.P99ms, busy.MaxMs, busy.Errors)
	}
}
