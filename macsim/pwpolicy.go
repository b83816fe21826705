package macsim

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dlclark/regexp2"
	"howett.net/plist"
)

// ContentPolicy is one account policy of the simulated Mac's
// policyCategoryPasswordContent (pwpolicy -getaccountpolicies): every new
// password must match its content, or dscl -passwd and sysadminctl refuse it
// with eDSAuthPasswordQualityCheckFailed (-14165), whichever rule failed
// (a macOS 26 observation, facts §2.1).
type ContentPolicy struct {
	ID string `json:"id"`
	// Content is the policy predicate, e.g.
	// "policyAttributePassword matches '.{8,}+'". Other predicates are
	// listed but never refuse a password here.
	Content string `json:"content"`
	// Description is the English policyContentDescription.
	Description string `json:"description,omitempty"`
}

// defaultContentPolicy is what a stock Mac carries (macOS 26.2 capture,
// facts §1.3), with minLen in place of 4.
func defaultContentPolicy(minLen int) ContentPolicy {
	return ContentPolicy{
		ID:          "com.apple.defaultpasswordpolicy.fde",
		Content:     fmt.Sprintf("policyAttributePassword matches '.{%d,}+'", minLen),
		Description: fmt.Sprintf("Enter a password that is %d characters or more.", minLen),
	}
}

var matchesContent = regexp.MustCompile(`^policyAttributePassword matches '(.*)'$`)

// accepts reports whether pw meets the policy, as ICU's whole-string
// match of the regular expression (possessive quantifiers read as greedy,
// which accepts the same passwords for these whole-string rules).
func (p ContentPolicy) accepts(pw []byte) bool {
	m := matchesContent.FindStringSubmatch(p.Content)
	if m == nil {
		return true
	}
	re, err := regexp2.Compile("^(?:"+greedy(m[1])+")$", regexp2.None)
	if err != nil {
		return true
	}
	re.MatchTimeout = time.Second
	ok, err := re.MatchString(string(pw))
	return err != nil || ok
}

// greedy drops the '+' that makes an ICU quantifier possessive.
func greedy(p string) string {
	var b strings.Builder
	esc := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !esc && c == '+' && i > 0 && strings.IndexByte("}*+?", p[i-1]) >= 0 && (i < 2 || p[i-2] != '\\') {
			continue
		}
		esc = !esc && c == '\\'
		b.WriteByte(c)
	}
	return b.String()
}

// policy checks a new password for rec against the Mac's and the user's
// content policies.
func (in *inv) policy(rec *Record, pw []byte) (dsStatus, bool) {
	for _, p := range append(append([]ContentPolicy(nil), in.st.Policies...), rec.Policies...) {
		if !p.accepts(pw) {
			return eDSAuthPasswordQualityCheckFailed, false
		}
	}
	return dsStatus{}, true
}

// pwpolicy implements `pwpolicy [-u USER] -getaccountpolicies` (facts §1):
// a header line on stdout, then the policies as an XML property list.
// Assumed: exit 0, and "Error: user NAME not found" with exit 1 for an
// unknown user. Other commands are not simulated.
func (in *inv) pwpolicy() int {
	user, cmd := "", ""
	for i := 0; i < len(in.args); i++ {
		switch a := in.args[i]; {
		case a == "-u" && i+1 < len(in.args):
			user = in.args[i+1]
			i++
		case a == "-n" && i+1 < len(in.args):
			i++ // only the local node is simulated
		case strings.TrimPrefix(a, "-") == "getaccountpolicies":
			cmd = "getaccountpolicies"
		default:
			fmt.Fprintf(in.stderr, "Usage: pwpolicy [-u username] -getaccountpolicies\n")
			return 1
		}
	}
	if cmd == "" {
		fmt.Fprintf(in.stderr, "Usage: pwpolicy [-u username] -getaccountpolicies\n")
		return 1
	}
	policies := in.st.Policies
	header := "Getting global account policies"
	auth := in.st.MaxFailedLogins
	if user != "" {
		rec := in.st.user(user)
		if rec == nil {
			fmt.Fprintf(in.stdout, "Error: user %s not found\n", user)
			return 1
		}
		policies, auth = rec.Policies, 0
		header = "Getting account policies for user <" + user + ">"
	}
	out := map[string]any{}
	var content []map[string]any
	for _, p := range policies {
		e := map[string]any{"policyContent": p.Content, "policyIdentifier": p.ID}
		if p.Description != "" {
			e["policyContentDescription"] = map[string]string{"en": p.Description}
		}
		content = append(content, e)
	}
	if len(content) > 0 {
		out["policyCategoryPasswordContent"] = content
	}
	if auth > 0 {
		out["policyCategoryAuthentication"] = []map[string]any{{
			"policyContent":    "policyAttributeFailedAuthentications < policyAttributeMaximumFailedAuthentications",
			"policyIdentifier": "com.apple.policy.legacy.maxFailedLoginAttempts",
			"policyParameters": map[string]int{"policyAttributeMaximumFailedAuthentications": auth},
		}}
	}
	b, err := plist.MarshalIndent(out, plist.XMLFormat, "\t")
	if err != nil {
		fmt.Fprintln(in.stderr, err)
		return 1
	}
	fmt.Fprintln(in.stdout, header)
	fmt.Fprintln(in.stdout, strings.TrimRight(string(b), "\n"))
	return 0
}
