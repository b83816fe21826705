package protocol

import (
	"slices"
	"strings"
	"testing"
)

func codes(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Code)
	}
	return out
}

func TestPolicyCheck(t *testing.T) {
	p := Policy{MinLength: 10, RequireUpper: true, RequireLower: true, RequireDigit: true, RequireSymbol: true, DisallowUsername: true, HistoryCount: 3}
	tests := []struct {
		name, user, pw string
		want           []string
	}{
		{"all met", "alice", "Correct-Horse-9", nil},
		{"too short", "alice", "Ab1!", []string{RuleMinLength}},
		{"no upper", "alice", "correct-horse-9", []string{RuleUpper}},
		{"no lower", "alice", "CORRECT-HORSE-9", []string{RuleLower}},
		{"no digit", "alice", "Correct-Horse-X", []string{RuleDigit}},
		{"no symbol", "alice", "CorrectHorse9", []string{RuleSymbol}},
		{"contains user any case", "alice", "My-ALICE-pw-9", []string{RuleNotUsername}},
		{"short user not checked", "al", "My-ALICE-pw-9", nil},
		{"newline", "alice", "Correct-Horse-9\n", []string{RulePrintable}},
		{"invalid utf8", "alice", "Correct-Horse-9\xff", []string{RulePrintable}},
		{"too long", "alice", "Aa1!" + strings.Repeat("x", MaxPasswordBytes), []string{RuleMaxLength}},
		{"unicode counts runes", "alice", "Ünïcödé-Pw-9", nil},
		{"empty", "alice", "", []string{RuleMinLength, RuleUpper, RuleLower, RuleDigit, RuleSymbol}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := codes(p.Check(tt.user, []byte(tt.pw)))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Check(%q) = %v, want %v", tt.pw, got, tt.want)
			}
		})
	}
}

func TestPolicyRulesHaveSentences(t *testing.T) {
	p := DefaultPolicy()
	p.RequireSymbol = true
	seen := map[string]bool{}
	for _, r := range p.Rules() {
		if r.Message == "" || seen[r.Code] {
			t.Fatalf("rule %q: empty sentence or duplicate", r.Code)
		}
		seen[r.Code] = true
	}
	if !seen[RuleHistory] || p.HistoryViolation().Code != RuleHistory {
		t.Fatal("history rule missing")
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatalf("default policy invalid: %v", err)
	}
	bad := []Policy{
		{MinLength: 0},
		{MinLength: 200},
		{MinLength: 8, HistoryCount: -1},
		{MinLength: 8, MaxAgeDays: 10, ExpiryWarningDays: 10},
	}
	for _, p := range bad {
		if p.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", p)
		}
	}
}

// Active Directory's complexity as the policy expresses it: three of five
// kinds of character, not the account name, not a part of the display name.
func TestPolicyADComplexity(t *testing.T) {
	p := Policy{MinLength: 7, MinCategories: 3, DisallowUsername: true, DisallowNameParts: true,
		NameParts: EncodeNameParts([]string{"bob", "alice"}, map[string][]string{"alice": NameParts("Alice Liddell-Smith, Jr."), "bob": {"Robert"}})}
	tests := []struct {
		name, user, pw string
		want           []string
	}{
		{"upper lower digit", "alice", "Garden42x", nil},
		{"lower digit symbol", "alice", "garden-42", nil},
		{"two kinds", "alice", "gardenforty", []string{RuleCategories}},
		{"two kinds with digits", "alice", "garden4242", []string{RuleCategories}},
		{"a letter without case is a kind", "alice", "garden42漢", nil},
		{"currency is no symbol", "alice", "garden€€€A", []string{RuleCategories}},
		{"space is no symbol", "alice", "garden 42", []string{RuleCategories}},
		{"account name (also a name part)", "alice", "xALICEx-42", []string{RuleNotUsername, RuleNotNameParts}},
		{"display name part", "alice", "Liddell-4x", []string{RuleNotNameParts}},
		{"second part after a hyphen", "alice", "smith-42X", []string{RuleNotNameParts}},
		{"part below three characters ignored", "alice", "Jr-garden-42", nil},
		{"other users' parts do not apply", "bob", "Liddell-4x", nil},
		{"each user's own parts", "bob", "robert-4X", []string{RuleNotNameParts}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := codes(p.Check(tt.user, []byte(tt.pw)))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Check(%q) = %v, want %v", tt.pw, got, tt.want)
			}
		})
	}
	if got := NameParts("Alice Liddell-Smith, Jr.\tx#Bob_Ann.Li"); !slices.Equal(got, []string{"Alice", "Liddell", "Smith", "Bob", "Ann"}) {
		t.Fatalf("NameParts = %q", got)
	}
	var rules []string
	for _, r := range (Policy{MinLength: 7, MinCategories: 3, DisallowNameParts: true, HistoryCount: 24, MinAgeDays: 1}).Rules() {
		if r.Local != (r.Code != RuleHistory && r.Code != RuleMinAge) {
			t.Errorf("rule %s: local = %v", r.Code, r.Local)
		}
		rules = append(rules, r.Code)
	}
	for _, c := range []string{RuleCategories, RuleNotNameParts, RuleHistory, RuleMinAge} {
		if !slices.Contains(rules, c) {
			t.Errorf("rules %v lack %s", rules, c)
		}
	}
	if (Policy{MinLength: 8, MinCategories: 6}).Validate() == nil || (Policy{MinLength: 8, MinAgeDays: -1}).Validate() == nil {
		t.Error("out-of-range min_categories or min_age_days accepted")
	}
}
