package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPasswordBytes is the longest password Lockstep accepts, whatever the
// policy says. macOS tools read passwords with getpass(3), whose buffer holds
// 128 bytes; a longer password would be silently truncated on the Mac and
// the places would disagree.
const MaxPasswordBytes = 128

// Rule codes. Each is stable and comes with a human sentence from Rules.
const (
	RuleMinLength   = "min_length"
	RuleMaxLength   = "max_length"
	RuleUpper       = "upper"
	RuleLower       = "lower"
	RuleDigit       = "digit"
	RuleSymbol      = "symbol"
	RuleNotUsername = "not_username"
	RulePrintable   = "printable"
	RuleHistory     = "history"
	// RuleMacPolicy is a rule of the Mac's own password policy (LocalRule).
	RuleMacPolicy = "mac_policy"
	// RuleCategories: characters of at least MinCategories of the five
	// kinds Active Directory's complexity rule counts.
	RuleCategories = "categories"
	// RuleNotNameParts: none of the user's name parts (NameParts).
	RuleNotNameParts = "not_name_parts"
	// RuleMinAge: the password was not changed too recently (MinAgeDays);
	// only the directory can check it.
	RuleMinAge = "min_age"
)

// Policy is the directory's password policy. The directory enforces it on
// every set; agents fetch it to check a new password while the user types.
type Policy struct {
	MinLength        int  `json:"min_length"`
	RequireUpper     bool `json:"require_upper"`
	RequireLower     bool `json:"require_lower"`
	RequireDigit     bool `json:"require_digit"`
	RequireSymbol    bool `json:"require_symbol"`
	DisallowUsername bool `json:"disallow_username"`
	// HistoryCount forbids reusing any of the last N passwords (the current
	// one included). Only the directory can check it.
	HistoryCount int `json:"history_count"`
	// MaxAgeDays makes passwords expire; 0 means never.
	MaxAgeDays int `json:"max_age_days"`
	// ExpiryWarningDays is when agents start warning before expiry.
	ExpiryWarningDays int `json:"expiry_warning_days"`

	// MinCategories, when above zero, asks for characters of at least
	// that many of the five kinds Active Directory's complexity rule
	// counts: uppercase letters, lowercase letters, the digits 0-9, the
	// symbols of Categories, and letters without case (most Asian
	// scripts). AD's complexity is 3 of them.
	MinCategories int `json:"min_categories,omitempty"`
	// DisallowNameParts forbids any part of the user's name, as AD's
	// complexity rule does with the display name. NameParts holds the
	// parts per directory user (the directory sends a device the parts of
	// the users bound to it), encoded by EncodeNameParts: a string, so that
	// a Policy stays comparable.
	DisallowNameParts bool   `json:"disallow_name_parts,omitempty"`
	NameParts         string `json:"name_parts,omitempty"`
	// MinAgeDays forbids a change until the password is that old; 0 means
	// no minimum. Only the directory can check it (the current password's
	// age is its to know).
	MinAgeDays int `json:"min_age_days,omitempty"`

	// Lockstep lists, comma-separated, the codes of the rules that are
	// Lockstep's own, added on top of a directory's policy that lacks them
	// (OpenLDAP's ppolicy has no character classes): the directory checks
	// them before the password is sent, and they are shown as Lockstep's.
	// A string, so that a Policy stays comparable.
	Lockstep string `json:"lockstep,omitempty"`
}

// IsLockstep reports whether the rule code is one of Lockstep's own rules
// on top of the directory's.
func (p Policy) IsLockstep(code string) bool {
	for _, c := range strings.Split(p.Lockstep, ",") {
		if c != "" && c == code {
			return true
		}
	}
	return false
}

// DefaultPolicy is what a new directory starts with.
func DefaultPolicy() Policy {
	return Policy{
		MinLength:         12,
		RequireUpper:      true,
		RequireLower:      true,
		RequireDigit:      true,
		RequireSymbol:     false,
		DisallowUsername:  true,
		HistoryCount:      5,
		MaxAgeDays:        90,
		ExpiryWarningDays: 14,
	}
}

// Validate reports a policy that cannot be satisfied or makes no sense.
func (p Policy) Validate() error {
	var errs []error
	if p.MinLength < 1 || p.MinLength > MaxPasswordBytes {
		errs = append(errs, fmt.Errorf("min_length must be between 1 and %d, got %d", MaxPasswordBytes, p.MinLength))
	}
	if p.HistoryCount < 0 || p.HistoryCount > 50 {
		errs = append(errs, fmt.Errorf("history_count must be between 0 and 50, got %d", p.HistoryCount))
	}
	if p.MaxAgeDays < 0 || p.MaxAgeDays > 3650 {
		errs = append(errs, fmt.Errorf("max_age_days must be between 0 and 3650, got %d", p.MaxAgeDays))
	}
	if p.ExpiryWarningDays < 0 || (p.MaxAgeDays > 0 && p.ExpiryWarningDays >= p.MaxAgeDays) {
		errs = append(errs, fmt.Errorf("expiry_warning_days must be between 0 and max_age_days-1, got %d", p.ExpiryWarningDays))
	}
	if p.MinCategories < 0 || p.MinCategories > 5 {
		errs = append(errs, fmt.Errorf("min_categories must be between 0 and 5, got %d", p.MinCategories))
	}
	if p.MinAgeDays < 0 || p.MinAgeDays > 998 {
		errs = append(errs, fmt.Errorf("min_age_days must be between 0 and 998, got %d", p.MinAgeDays))
	}
	return errors.Join(errs...)
}

// Rule is one line of the policy checklist.
type Rule struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Local rules can be checked without the directory; the history rule
	// cannot.
	Local bool `json:"local"`
	// Lockstep marks a rule of Lockstep's own on top of the directory's
	// (Policy.Lockstep).
	Lockstep bool `json:"lockstep,omitempty"`
}

// Violation is an unmet rule.
type Violation struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Rules lists the policy's rules in the order a checklist shows them.
func (p Policy) Rules() []Rule {
	rules := []Rule{{RuleMinLength, fmt.Sprintf("At least %d characters", p.MinLength), true, false}}
	if p.RequireUpper {
		rules = append(rules, Rule{RuleUpper, "An uppercase letter", true, false})
	}
	if p.RequireLower {
		rules = append(rules, Rule{RuleLower, "A lowercase letter", true, false})
	}
	if p.RequireDigit {
		rules = append(rules, Rule{RuleDigit, "A number", true, false})
	}
	if p.RequireSymbol {
		rules = append(rules, Rule{RuleSymbol, "A symbol such as ! or #", true, false})
	}
	if p.MinCategories > 0 {
		rules = append(rules, Rule{RuleCategories, fmt.Sprintf("Characters of %d kinds: uppercase, lowercase, number, symbol, other letter", p.MinCategories), true, false})
	}
	if p.DisallowUsername {
		rules = append(rules, Rule{RuleNotUsername, "Does not contain your user name", true, false})
	}
	if p.DisallowNameParts {
		rules = append(rules, Rule{RuleNotNameParts, "Does not contain a part of your name", true, false})
	}
	rules = append(rules,
		Rule{RuleMaxLength, fmt.Sprintf("At most %d bytes", MaxPasswordBytes), true, false},
		Rule{RulePrintable, "No line breaks or control characters", true, false},
	)
	if p.HistoryCount > 0 {
		rules = append(rules, Rule{RuleHistory, fmt.Sprintf("Not one of your last %d passwords", p.HistoryCount), false, false})
	}
	if p.MinAgeDays > 0 {
		rules = append(rules, Rule{RuleMinAge, fmt.Sprintf("At least %d day(s) since the last change", p.MinAgeDays), false, false})
	}
	if p.Lockstep != "" {
		for i := range rules {
			rules[i].Lockstep = p.IsLockstep(rules[i].Code)
		}
	}
	return rules
}

// Check evaluates every local rule against a candidate password for user
// and returns the unmet ones, in Rules order. It does not check history.
func (p Policy) Check(user string, password []byte) []Violation {
	var upper, lower, digit, symbol, printable bool
	printable = utf8.Valid(password)
	for _, r := range string(password) {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsControl(r) || r == utf8.RuneError:
			printable = false
		case unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r) || unicode.IsMark(r):
			symbol = true
		case unicode.IsLetter(r):
			// A letter without case (for example CJK) counts as neither.
		default:
			symbol = true
		}
	}
	met := map[string]bool{
		RuleMinLength:    utf8.RuneCount(password) >= p.MinLength,
		RuleUpper:        upper,
		RuleLower:        lower,
		RuleDigit:        digit,
		RuleSymbol:       symbol,
		RuleCategories:   Categories(password) >= p.MinCategories,
		RuleNotUsername:  !containsFold(password, user),
		RuleNotNameParts: !containsAnyFold(password, p.NamePartsOf(user)),
		RuleMaxLength:    len(password) <= MaxPasswordBytes,
		RulePrintable:    printable,
	}
	var out []Violation
	for _, r := range p.Rules() {
		if r.Local && !met[r.Code] {
			out = append(out, Violation{Code: r.Code, Message: r.Message})
		}
	}
	return out
}

// HistoryViolation is the violation the directory returns for a reused
// password.
func (p Policy) HistoryViolation() Violation {
	for _, r := range p.Rules() {
		if r.Code == RuleHistory {
			return Violation{Code: r.Code, Message: r.Message}
		}
	}
	return Violation{Code: RuleHistory, Message: "Not your current password"}
}

// CategorySymbols are the symbols Active Directory's complexity rule
// counts as one kind of character (Microsoft's list; Samba's is the
// same). Others, currency signs for one, count as none.
const CategorySymbols = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/"

// Categories counts the kinds of character of password as Active
// Directory's complexity rule does: uppercase, lowercase, the digits 0-9,
// CategorySymbols, and letters without case. Where Microsoft and Samba
// differ it counts what both count, so that a password it passes is one
// either accepts.
func Categories(password []byte) int {
	var kinds [5]bool
	for _, r := range string(password) {
		switch {
		case r >= '0' && r <= '9':
			kinds[2] = true
		case unicode.IsUpper(r):
			kinds[0] = true
		case unicode.IsLower(r):
			kinds[1] = true
		case r < utf8.RuneSelf && strings.ContainsRune(CategorySymbols, r):
			kinds[3] = true
		case unicode.IsLetter(r):
			kinds[4] = true
		}
	}
	n := 0
	for _, k := range kinds {
		if k {
			n++
		}
	}
	return n
}

// NameParts splits a display name into the parts Active Directory's
// complexity rule forbids in a password: the pieces between commas,
// periods, hyphens, underscores, spaces, tabs and number signs, of three
// characters or more.
func NameParts(displayName string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(displayName, func(r rune) bool { return strings.ContainsRune(",.-_ \t#", r) || unicode.IsControl(r) }) {
		if utf8.RuneCountInString(f) >= 3 {
			out = append(out, f)
		}
	}
	return out
}

// Separators of the NameParts encoding: neither can be in a user name or a
// name part (NameParts drops control characters).
const (
	namePartsUser = "\x1e"
	namePartsPart = "\x1f"
)

// EncodeNameParts encodes name parts by user for Policy.NameParts, in the
// order of users.
func EncodeNameParts(users []string, parts map[string][]string) string {
	var b strings.Builder
	for _, u := range users {
		if len(parts[u]) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(namePartsUser)
		}
		b.WriteString(u)
		for _, p := range parts[u] {
			b.WriteString(namePartsPart)
			b.WriteString(p)
		}
	}
	return b.String()
}

// NamePartsOf returns the name parts NameParts holds for user.
func (p Policy) NamePartsOf(user string) []string {
	for _, rec := range strings.Split(p.NameParts, namePartsUser) {
		fields := strings.Split(rec, namePartsPart)
		if len(fields) > 1 && fields[0] == user {
			return fields[1:]
		}
	}
	return nil
}

func containsAnyFold(password []byte, parts []string) bool {
	for _, p := range parts {
		if containsFold(password, p) {
			return true
		}
	}
	return false
}

// containsFold reports whether password contains user, ignoring case. Names
// shorter than three characters are not checked: they would forbid too much.
func containsFold(password []byte, user string) bool {
	if utf8.RuneCountInString(user) < 3 {
		return false
	}
	lower := bytes.ToLower(password)
	defer clear(lower) // a copy of the password: wipe it too
	return bytes.Contains(lower, bytes.ToLower([]byte(user)))
}
