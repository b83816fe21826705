//go:build !linux

package macsim

// procStat is only implemented on Linux, where the simulator runs; elsewhere
// every process is in the system session.
func procStat(pid int) (ppid int, start uint64, ok bool) { return 0, 0, false }
