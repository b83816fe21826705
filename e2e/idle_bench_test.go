package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkDaemonIdle measures lockstepd at rest on a simulated Mac: its
// resident memory, the CPU it burns and the tools it runs while nothing
// happens (DESIGN.md: RSS <= 20 MiB, no polling). Run it with
//
//	go test ./e2e -run '^$' -bench DaemonIdle -benchtime 1x
//
// LOCKSTEP_IDLE (a duration, default 65s) sets how long it stays idle; it
// must cover two directory keepalives (30 s apart by default) to show that
// keepalives are all that happens.
func BenchmarkDaemonIdle(b *testing.B) {
	idle := 65 * time.Second
	if v := os.Getenv("LOCKSTEP_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		idle = d
	}
	for i := 0; i < b.N; i++ {
		runIdle(b, idle)
	}
}

func runIdle(b *testing.B, idle time.Duration) {
	b.StopTimer()
	u := newUser(b, shared, true)
	m := newMac(b, shared, u)
	pid := m.daemon.Process.Pid
	before, err := m.sim.Invocations()
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTicks(b, pid)
	b.StartTimer()
	time.Sleep(idle)
	b.StopTimer()
	after, err := m.sim.Invocations()
	if err != nil {
		b.Fatal(err)
	}
	cpu1 := cpuTicks(b, pid)
	rss, hwm := memKiB(b, pid, "VmRSS:"), memKiB(b, pid, "VmHWM:")
	b.ReportMetric(float64(rss)/1024, "RSS-MiB")
	b.ReportMetric(float64(hwm)/1024, "peakRSS-MiB")
	b.ReportMetric(float64(len(after)-len(before)), "tool-runs-idle")
	b.ReportMetric(float64(cpu1-cpu0)*10/idle.Seconds(), "cpu-ms/s")
	fmt.Printf("lockstepd idle for %v: RSS %.1f MiB (peak %.1f MiB), %d tool runs, %d ms CPU\n",
		idle, float64(rss)/1024, float64(hwm)/1024, len(after)-len(before), (cpu1-cpu0)*10)
}

func memKiB(b *testing.B, pid int, key string) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), key) {
			n, _ := strconv.Atoi(strings.Fields(sc.Text())[1])
			return n
		}
	}
	b.Fatalf("%s not found", key)
	return 0
}

// cpuTicks returns utime+stime in clock ticks (1/100 s on Linux).
func cpuTicks(b *testing.B, pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.Atoi(fields[11])
	st, _ := strconv.Atoi(fields[12])
	return ut + st
}
