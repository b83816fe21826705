// Package version holds the build's version, set by the linker
// (-X github.com/lockstep-dev/lockstep/version.Version=...).
package version

// Version is the release version, "dev" for a plain go build.
var Version = "dev"
