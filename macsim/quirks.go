package macsim

import (
	"fmt"
	"slices"
	"strings"
)

// Quirks switch the simulated Mac to behaviours that macos-tools.md reports
// for some macOS versions, or to other plausible texts where the reference
// has none, so that tests can prove Lockstep behaves (or fails loudly) under
// each. The zero value is the documented behaviour.
type Quirks struct {
	// UnlockAcceptsAny: unlock-keychain reports success for any password even
	// on a locked keychain, and leaves it locked (a reported, unconfirmed
	// macOS 26.4 regression, §5.8).
	UnlockAcceptsAny bool `json:"unlock_accepts_any,omitempty"`
	// SysadminctlPrompts picks sysadminctl's prompt texts and order for "-"
	// passwords (saprompts.go); empty is "named".
	SysadminctlPrompts string `json:"sysadminctl_prompts,omitempty"`
}

// quirkNames are the switches `macsim quirk --set NAME=VALUE` takes.
var quirkNames = []string{"unlock-accepts-any", "sysadminctl-prompts"}

// set turns one quirk on or off (value "on"/"off") or to a named variant.
func (q *Quirks) set(name, value string) error {
	on := value == "on" || value == "true" || value == "1"
	if !on && value != "off" && value != "false" && value != "0" && name == "unlock-accepts-any" {
		return fmt.Errorf("quirk %s: value must be on or off", name)
	}
	switch name {
	case "unlock-accepts-any":
		q.UnlockAcceptsAny = on
	case "sysadminctl-prompts":
		if err := validPromptVariant(value); err != nil {
			return err
		}
		q.SysadminctlPrompts = value
		if value == "named" {
			q.SysadminctlPrompts = ""
		}
	default:
		return fmt.Errorf("unknown quirk %q (known: %s)", name, strings.Join(quirkNames, ", "))
	}
	return nil
}

// SetQuirk changes one quirk of the simulated Mac.
func (s *Sim) SetQuirk(name, value string) error {
	if !slices.Contains(quirkNames, name) {
		return fmt.Errorf("unknown quirk %q (known: %s)", name, strings.Join(quirkNames, ", "))
	}
	return s.view(func(st *State) (bool, error) { return true, st.Quirks.set(name, value) })
}
