// Command macsim is the macOS simulator: one binary that acts as dscl,
// sysadminctl, fdesetup, security, diskutil and scutil (by the name it is
// called with) over a simulated Mac's state, plus the macsim command line
// that builds, inspects and faults that Mac. See package macsim.
package main

import (
	"os"

	"github.com/lockstep-dev/lockstep/macsim"
)

func main() { os.Exit(macsim.Main(os.Args)) }
