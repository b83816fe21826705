//go:build darwin && cgo

package bad

/*
static int value(void) { return 42; }
*/
import "C"

// Value has two errors a darwin cgo build would report.
func Value() int { return int(C.value()) + helper(1, 2) + missing }

func helper(x int) int { return x }
