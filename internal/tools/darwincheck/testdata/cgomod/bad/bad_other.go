//go:build !darwin || !cgo

package bad

// Value is what every cross build without cgo sees: fine.
func Value() int { return 0 }
