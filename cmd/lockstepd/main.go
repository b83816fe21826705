// Command lockstepd is Lockstep's root daemon (agent.Main holds the
// command).
package main

import (
	"os"

	"github.com/lockstep-dev/lockstep/agent"
	"github.com/lockstep-dev/lockstep/version"
)

func main() { os.Exit(agent.Main(os.Args[1:], version.Version)) }
