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
