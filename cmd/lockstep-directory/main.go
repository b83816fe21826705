// Command lockstep-directory runs the Lockstep directory service and
// administers a running one; package directory/cli holds the command.
package main

import (
	"os"

	"github.com/lockstep-dev/lockstep/directory/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
