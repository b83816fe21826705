package directory

import (
	"sync/atomic"
	"time"
)

// diskWatch caches whether the data directory's file system is below the
// reserve, checked at most once a second.
type diskWatch struct {
	checked atomic.Int64 // unix nanoseconds of the last check
	low     atomic.Bool
}

// lowDisk reports whether free space in the data directory is below
// Config.DiskReserveMiB (SQLite only; never with PostgreSQL or a negative
// reserve). Noise is not written then, and new devices cannot enroll.
func (s *Server) lowDisk() bool {
	if s.cfg.DatabaseURL != "" || s.cfg.DiskReserveMiB < 0 {
		return false
	}
	now := time.Now().UnixNano()
	last := s.disk.checked.Load()
	if now-last < int64(time.Second) || !s.disk.checked.CompareAndSwap(last, now) {
		return s.disk.low.Load()
	}
	free, err := freeBytes(s.cfg.DataDir)
	low := err == nil && free < uint64(s.cfg.DiskReserveMiB)<<20
	if low != s.disk.low.Swap(low) {
		if low {
			s.log.Warn("disk nearly full: refusing enrollments and not recording noise", "free_mib", free>>20,
				"reserve_mib", s.cfg.DiskReserveMiB)
		} else {
			s.log.Info("disk space back above the reserve", "free_mib", free>>20)
		}
	}
	return low
}
