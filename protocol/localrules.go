package protocol

import (
	"strings"
	"time"

	"github.com/dlclark/regexp2"
)

// LocalRule is one rule of a Mac's own password policy: an entry of
// pwpolicy's policyCategoryPasswordContent (macOS account policies). The Mac
// refuses a new password that fails one, so Lockstep checks them, beside the
// directory's rules, before the directory is changed.
type LocalRule struct {
	// ID is the policy's policyIdentifier.
	ID string `json:"id"`
	// Descriptions is policyContentDescription: the rule in the Mac's own
	// words, by language ("en", "de", "default", ...).
	Descriptions map[string]string `json:"descriptions,omitempty"`
	// Pattern is the regular expression of a "policyAttributePassword
	// matches '…'" content; empty when the content is something Lockstep
	// cannot evaluate, which the Mac then checks when the password is saved.
	Pattern string `json:"pattern,omitempty"`
}

// Description picks the rule's text for the first of langs it has (an exact
// tag, then its language alone), else English, else any.
func (r LocalRule) Description(langs ...string) string {
	for _, l := range langs {
		l = strings.ReplaceAll(l, "-", "_")
		if d, ok := r.Descriptions[l]; ok {
			return d
		}
		if i := strings.IndexByte(l, '_'); i > 0 {
			if d, ok := r.Descriptions[l[:i]]; ok {
				return d
			}
		}
	}
	for _, k := range []string{"en", "policyDefaultContentDescription", "default"} {
		if d, ok := r.Descriptions[k]; ok {
			return d
		}
	}
	for _, d := range r.Descriptions {
		return d
	}
	return r.ID
}

// Checkable reports whether Lockstep can check the rule before saving.
func (r LocalRule) Checkable() bool { return r.Pattern != "" }

// Met reports whether password satisfies the rule. A rule Lockstep cannot
// evaluate (no pattern, a pattern it cannot compile, or one that runs too
// long) counts as met here: the Mac checks it when the password is saved.
//
// The Mac matches with ICU regular expressions and NSPredicate's MATCHES,
// which must cover the whole password. regexp2 has ICU's look-arounds;
// possessive quantifiers ("{4,}+", which macOS's own default rule uses) are
// read as greedy, which matches the same passwords for a whole-string match
// of these rules.
func (r LocalRule) Met(password []byte) bool {
	if r.Pattern == "" {
		return true
	}
	re, err := regexp2.Compile(`^(?:`+dePossess(r.Pattern)+`)$`, regexp2.None)
	if err != nil {
		return true
	}
	re.MatchTimeout = 100 * time.Millisecond
	ok, err := re.MatchString(string(password))
	return err != nil || ok
}

// UnmetLocal returns the rules password fails.
func UnmetLocal(rules []LocalRule, password []byte) []LocalRule {
	var out []LocalRule
	for _, r := range rules {
		if !r.Met(password) {
			out = append(out, r)
		}
	}
	return out
}

// dePossess drops the '+' that makes a quantifier possessive.
func dePossess(p string) string {
	var b strings.Builder
	inClass, escaped := false, false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '[':
			inClass = true
		case c == ']':
			inClass = false
		case c == '+' && !inClass && i > 0 && strings.IndexByte("}*+?", p[i-1]) >= 0 && !(i > 1 && p[i-2] == '\\'):
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Violation is the refusal of a password that fails r: the rule's code and,
// as its message, the Mac's own words for it.
func (r LocalRule) Violation() Violation {
	return Violation{Code: RuleMacPolicy, Message: r.Description()}
}
