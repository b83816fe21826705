package macsim

import (
	"errors"
	"slices"
	"strings"
)

// Fault makes a named step misbehave. It is stored in the state and checked
// by every tool invocation before it does anything.
//
//   - Fail (with Exit and optional Stdout): print Fail to stderr (with the
//     NSLog prefix for sysadminctl) and Stdout to stdout, exit Exit, change
//     nothing.
//   - Hang: record the invocation, start a helper in the same process group
//     that keeps stdout/stderr open, and block until killed. Nothing changes.
//   - CrashCaller: run the step normally (the change is applied and saved),
//     then SIGKILL the parent process (the caller) before exiting, as if the
//     daemon died between the tool's success and its own bookkeeping. When
//     the step ran as a uid that may not signal the caller (a keychain step
//     run as the user), the kill is deferred: the caller's next tool run
//     kills it before doing anything, so the outcome is the same (the change
//     landed, nothing after it did).
//
// Count > 0 fires the fault that many times, then it is removed; 0 fires on
// every matching invocation.
type Fault struct {
	Tool        string `json:"tool"`
	Verb        string `json:"verb,omitempty"` // "" or "*": any verb
	Arg         string `json:"arg,omitempty"`  // only when an argument equals it or ends in "/"+Arg
	Fail        string `json:"fail,omitempty"`
	Stdout      string `json:"stdout,omitempty"`
	Exit        int    `json:"exit"`
	Hang        bool   `json:"hang,omitempty"`
	CrashCaller bool   `json:"crash_caller,omitempty"`
	Count       int    `json:"count,omitempty"`
	Fired       int    `json:"fired"`
}

func (f *Fault) validate() error {
	if !slices.Contains(Tools, f.Tool) {
		return errors.New("fault: --tool must be one of " + strings.Join(Tools, ", "))
	}
	kinds := 0
	if f.Hang {
		kinds++
	}
	if f.CrashCaller {
		kinds++
	}
	if f.Fail != "" || f.Stdout != "" || f.Exit != 0 {
		kinds++
	}
	if kinds != 1 {
		return errors.New("fault: give exactly one of --fail/--exit, --hang, --crash-caller")
	}
	if f.Count < 0 {
		return errors.New("fault: --count must be >= 0")
	}
	return nil
}

func (f *Fault) matches(tool, verb string, args []string) bool {
	if f.Tool != tool {
		return false
	}
	if f.Verb != "" && f.Verb != "*" && !strings.EqualFold(f.Verb, verb) {
		return false
	}
	if f.Arg != "" {
		return slices.ContainsFunc(args, func(a string) bool { return a == f.Arg || strings.HasSuffix(a, "/"+f.Arg) })
	}
	return true
}

// matchFault returns the first fault for this invocation, counting it and
// dropping it when its count is used up.
func (s *State) matchFault(tool, verb string, args []string) *Fault {
	for i, f := range s.Faults {
		if !f.matches(tool, verb, args) {
			continue
		}
		f.Fired++
		if f.Count > 0 && f.Fired >= f.Count {
			s.Faults = slices.Delete(s.Faults, i, i+1)
		}
		return f
	}
	return nil
}
