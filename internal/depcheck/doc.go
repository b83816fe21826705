// Package depcheck holds DESIGN.md's import rules ("Which package may use
// which", exactly: rules.go) and the tests that keep the module to them:
// every package's imports, a deliberate violation of each kind injected
// through go list -overlay that must be caught, thin mains, and no GUI
// toolkit in the daemon or the CLIs.
package depcheck
