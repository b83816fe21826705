//go:build darwin && cgo

package good

/*
static int value(void) { return 42; }
*/
import "C"

// Value is correct apart from what only cgo can check.
func Value() int { return int(C.value()) + helper(1) }

func helper(x int) int { return x }
