package protocol

import "testing"

func TestLocalRuleMet(t *testing.T) {
	tests := []struct {
		pattern, password string
		met               bool
	}{
		{".{4,}+", "abcd", true}, // the stock Mac's rule, possessive
		{".{4,}+", "abc", false},
		{".{8,}", "Sh0rt!", false},
		{"(.*[^a-zA-Z0-9].*){1,}", "letters1", false},
		{"(.*[^a-zA-Z0-9].*){1,}", "letters1!", true},
		{"(.*[0-9].*){2,}+", "a1b2", true},
		{"(.*[0-9].*){2,}+", "a1b", false},
		{"(?=.*[A-Z])(?=.*[a-z]).*", "mixedCase", true}, // ICU look-ahead
		{"(?=.*[A-Z])(?=.*[a-z]).*", "lower", false},
		{"^$|.{4,}+", "", true}, // the whole password must match
		{"abc", "xxabcxx", false},
		{"a\\+", "a+", true},            // an escaped plus is kept
		{"(unclosed", "anything", true}, // a pattern Lockstep cannot compile: the Mac decides
		{"", "anything", true},
	}
	for _, tt := range tests {
		if got := (LocalRule{Pattern: tt.pattern}).Met([]byte(tt.password)); got != tt.met {
			t.Errorf("%q against %q: met = %t, want %t", tt.pattern, tt.password, got, tt.met)
		}
	}
	rules := []LocalRule{{ID: "len", Pattern: ".{10,}"}, {ID: "digit", Pattern: ".*[0-9].*"}, {ID: "history"}}
	if u := UnmetLocal(rules, []byte("short")); len(u) != 2 || u[0].ID != "len" || u[1].ID != "digit" {
		t.Errorf("unmet = %+v", u)
	}
}

func TestLocalRuleDescription(t *testing.T) {
	r := LocalRule{ID: "x", Descriptions: map[string]string{"en": "English", "de": "Deutsch", "fr_CA": "Canadien"}}
	for langs, want := range map[string][]string{"Deutsch": {"de-DE"}, "Canadien": {"fr-CA"}, "English": {"ja"}} {
		if got := r.Description(want...); got != langs {
			t.Errorf("Description(%v) = %q, want %q", want, got, langs)
		}
	}
	if got := (LocalRule{ID: "only-id"}).Description(); got != "only-id" {
		t.Errorf("no description = %q", got)
	}
	if got := (LocalRule{Descriptions: map[string]string{"policyDefaultContentDescription": "Default"}}).Description("de"); got != "Default" {
		t.Errorf("default description = %q", got)
	}
}
