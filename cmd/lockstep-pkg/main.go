// Command lockstep-pkg builds and inspects Lockstep's macOS installer
// packages on any OS, in pure Go (packaging/cli).
package main

import (
	"os"

	"github.com/lockstep-dev/lockstep/packaging/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
