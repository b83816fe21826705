// Command lockstep is the command-line face of Lockstep: status, change,
// sync, doctor and diagnostics over lockstepd's local API.
package main

import (
	"os"

	"github.com/lockstep-dev/lockstep/ui/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
