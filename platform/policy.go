package platform

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"howett.net/plist"
)

// PasswordRule is one content rule of the Mac's account policies
// (pwpolicy's policyCategoryPasswordContent).
type PasswordRule struct {
	// ID is policyIdentifier ("com.apple.defaultpasswordpolicy.fde",
	// "ProfilePayload:<UUID>:minLength", ...).
	ID string
	// Descriptions is policyContentDescription, by language.
	Descriptions map[string]string
	// Pattern is the ICU regular expression of a
	// "policyAttributePassword matches '…'" content; empty for any other
	// content, which only the Mac can evaluate.
	Pattern string
}

// PasswordRules returns the content rules the Mac applies to name's new
// passwords: the global account policies and the user's own
// (`pwpolicy -getaccountpolicies`, then with `-u NAME`).
func (a *Accounts) PasswordRules(ctx context.Context, name string) ([]PasswordRule, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var out []PasswordRule
	for _, args := range [][]string{{"-getaccountpolicies"}, {"-u", name, "-getaccountpolicies"}} {
		res, err := a.r.Run(ctx, Cmd{Tool: Pwpolicy, Args: args})
		if err != nil {
			return nil, err
		}
		rules, err := parseAccountPolicies(string(res.Stdout))
		if err != nil || res.Exit != 0 {
			msg := firstLine(strings.TrimSpace(string(res.Stdout) + string(res.Stderr)))
			if err != nil {
				msg = err.Error()
			}
			return nil, &ToolError{Tool: Pwpolicy, Verb: "getaccountpolicies", Exit: res.Exit, Message: msg,
				Stdout: res.stdoutText(), Stderr: res.stderrText(), Err: ErrToolFailed}
		}
		out = append(out, rules...)
	}
	return out, nil
}

// matchesPolicy is a content policy Lockstep can evaluate: the password
// must match the quoted regular expression.
var matchesPolicy = regexp.MustCompile(`^\s*policyAttributePassword\s+matches\s+'((?:[^'\\]|\\.)*)'\s*$`)

// parseAccountPolicies reads `pwpolicy -getaccountpolicies` output: a
// header line ("Getting global account policies", "Getting account
// policies for user <NAME>") on stdout, then an XML property list whose
// policyCategoryPasswordContent holds the content rules (facts §1).
func parseAccountPolicies(out string) ([]PasswordRule, error) {
	i := strings.Index(out, "<?xml")
	if i < 0 {
		i = strings.Index(out, "<plist")
	}
	if i < 0 {
		return nil, fmt.Errorf("no property list in pwpolicy's output")
	}
	var doc struct {
		Content []struct {
			Content      string            `plist:"policyContent"`
			ID           string            `plist:"policyIdentifier"`
			Descriptions map[string]string `plist:"policyContentDescription"`
		} `plist:"policyCategoryPasswordContent"`
	}
	if _, err := plist.Unmarshal([]byte(out[i:]), &doc); err != nil {
		return nil, fmt.Errorf("pwpolicy's property list: %w", err)
	}
	var rules []PasswordRule
	for _, c := range doc.Content {
		r := PasswordRule{ID: c.ID, Descriptions: c.Descriptions}
		if m := matchesPolicy.FindStringSubmatch(c.Content); m != nil {
			r.Pattern = strings.ReplaceAll(m[1], `\'`, `'`)
		}
		rules = append(rules, r)
	}
	return rules, nil
}
