//go:build !unix

package directory

func maxConnsFromLimit() int { return 1 << 16 }
