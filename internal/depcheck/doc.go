// Package depcheck holds the test that keeps the architecture's import
// rules (DESIGN.md, "Which package may use which") true as the code grows.
package depcheck
