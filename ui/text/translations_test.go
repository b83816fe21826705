package text

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
	"howett.net/plist"
)

// shipped are the translations Lockstep ships; a file lost or added
// without its tests fails here.
var shipped = []string{"de", "es", "fr", "ja"}

// inEachLanguage runs fn in English and in every shipped translation, and
// fails on any message that fell back to English because its translation
// did not render.
func inEachLanguage(t *testing.T, fn func(*testing.T)) {
	for _, l := range append([]string{"en"}, shipped...) {
		t.Run(l, func(t *testing.T) {
			Use(Settings{Languages: []string{l}, Zone: time.UTC, Now: func() time.Time { return t0 }})
			t.Cleanup(func() { Use(Settings{}); fallback = nil })
			if got := Language(); got != l {
				t.Fatalf("asked for %s, rendering in %s", l, got)
			}
			fallback = func(id string, err error) { t.Errorf("%s: %s said in English: %v", l, id, err) }
			fn(t)
		})
	}
}

// translation reads translations/<lang>.json as go-i18n reads it: an ID
// to a text, or to its plural forms.
func translation(t *testing.T, lang string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("translations", lang+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s.json: %v", lang, err)
	}
	return m
}

func TestShippedTranslations(t *testing.T) {
	if got := Languages(); !slices.Equal(got, append([]string{"en"}, shipped...)) {
		t.Errorf("Languages() = %v, want en and %v", got, shipped)
	}
}

// Every translation has every message of the catalogue, and nothing else:
// a message added in Go and not translated fails here (until then it is
// shown in English), and so does a translation of a message that is gone.
func TestTranslationsHaveEveryKey(t *testing.T) {
	for _, l := range shipped {
		tr := translation(t, l)
		for _, m := range catalog {
			if _, ok := tr[m.id]; !ok {
				t.Errorf("%s.json lacks %s (%q)", l, m.id, m.other)
			}
		}
		ids := map[string]bool{}
		for _, m := range catalog {
			ids[m.id] = true
		}
		for _, id := range slices.Sorted(maps.Keys(tr)) {
			if !ids[id] {
				t.Errorf("%s.json has %s, which no message uses", l, id)
			}
		}
	}
}

// pluralForms are the plural forms go-i18n asks lang's translations for,
// found by rendering a message that has all six with counts from 0 to 1000
// and the millions (French and Spanish say "1 000 000 de jours": CLDR 38's
// "many").
func pluralForms(t *testing.T, lang string) []string {
	t.Helper()
	b := i18n.NewBundle(language.English)
	if err := b.AddMessages(language.MustParse(lang), &i18n.Message{ID: "probe",
		Zero: "zero", One: "one", Two: "two", Few: "few", Many: "many", Other: "other"}); err != nil {
		t.Fatal(err)
	}
	l := i18n.NewLocalizer(b, lang)
	seen := map[string]bool{}
	for n := 0; n <= 3_000_000; n++ {
		if n > 1000 && n%1_000_000 != 0 {
			continue
		}
		s, err := l.Localize(&i18n.LocalizeConfig{MessageID: "probe", PluralCount: n})
		if err != nil {
			t.Fatal(err)
		}
		seen[s] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// A counted message has exactly its language's plural forms, CLDR's
// (https://www.unicode.org/cldr/charts/latest/supplemental/language_plural_rules.html;
// German and English: one, other; French and Spanish: one, many, other;
// Japanese: other only), and an uncounted one is a plain text.
func TestTranslationPluralForms(t *testing.T) {
	want := map[string][]string{"de": {"one", "other"}, "fr": {"many", "one", "other"},
		"es": {"many", "one", "other"}, "ja": {"other"}}
	for _, l := range shipped {
		forms := pluralForms(t, l)
		if !slices.Equal(forms, want[l]) {
			t.Errorf("CLDR forms of %s: %v, want %v", l, forms, want[l])
		}
		tr := translation(t, l)
		for _, m := range catalog {
			v, ok := tr[m.id]
			if !ok {
				continue // TestTranslationsHaveEveryKey says it
			}
			obj, isObj := v.(map[string]any)
			switch {
			case m.one == "" && isObj:
				t.Errorf("%s.json: %s is counted, but the message is not", l, m.id)
			case m.one != "" && !isObj:
				t.Errorf("%s.json: %s is a plain text, but the message is counted", l, m.id)
			case m.one != "":
				if got := slices.Sorted(maps.Keys(obj)); !slices.Equal(got, forms) {
					t.Errorf("%s.json: %s has forms %v, want %v", l, m.id, got, forms)
				}
			}
		}
	}
}

var action = regexp.MustCompile(`{{-?\s*(.*?)\s*-?}}`)

// placeholders are the template actions in src, each once, sorted.
func placeholders(src string) []string {
	set := map[string]bool{}
	for _, m := range action.FindAllStringSubmatch(src, -1) {
		set[m[1]] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// Each form of each translated message uses exactly the template fields of
// the English form it stands for (a translation's "one" is English's
// "one"; its "many" and "other" are English's "other"): a field dropped
// loses the user's data, a field renamed or added renders nothing.
func TestTranslationPlaceholders(t *testing.T) {
	for _, l := range shipped {
		tr := translation(t, l)
		for _, m := range catalog {
			switch v := tr[m.id].(type) {
			case string:
				if got, want := placeholders(v), placeholders(m.other); !slices.Equal(got, want) {
					t.Errorf("%s.json: %s uses %v, English %v", l, m.id, got, want)
				}
			case map[string]any:
				for form, text := range v {
					s, _ := text.(string)
					en := m.other
					if form == "one" && m.one != "" {
						en = m.one
					}
					if got, want := placeholders(s), placeholders(en); !slices.Equal(got, want) {
						t.Errorf("%s.json: %s (%s) uses %v, English %v", l, m.id, form, got, want)
					}
				}
			}
		}
	}
}

// The check above has to catch a dropped, a renamed and an added field.
func TestPlaceholderCheckCatches(t *testing.T) {
	for _, tt := range []struct {
		en, tr string
		same   bool
	}{
		{"Version {{.Version}}", "Version {{.Version}}", true},
		{"{{.Place}}: {{.State}}", "{{.State}} — {{.Place}}", true},
		{"Version {{.Version}}", "Version", false},
		{"Version {{.Version}}", "Version {{.version}}", false},
		{"Version {{.Version}}", "Version {{.Version}} {{.N}}", false},
	} {
		if got := slices.Equal(placeholders(tt.en), placeholders(tt.tr)); got != tt.same {
			t.Errorf("%q vs %q: same %v, want %v", tt.en, tt.tr, got, tt.same)
		}
	}
}

// counts are the numbers counted messages are rendered with: each plural
// form of each shipped language is reached.
var counts = []int{0, 1, 2, 3, 5, 11, 21, 101, 1_000_000}

// Every message renders in every language, with every field filled and
// each count, without falling back to English, and shows the data given.
func TestEveryMessageRendersInEachLanguage(t *testing.T) {
	inEachLanguage(t, func(t *testing.T) {
		for _, m := range catalog {
			fields := placeholders(m.other + m.one)
			data := map[string]any{}
			for _, f := range fields {
				if name, ok := strings.CutPrefix(f, "."); ok && name != "N" {
					data[name] = "«" + name + "»"
				}
			}
			ns := []int{0}
			if m.one != "" || slices.Contains(fields, ".N") {
				ns = counts
			}
			for _, n := range ns {
				var got string
				if m.one != "" {
					got = m.N(n, data)
				} else {
					data["N"] = n
					got = m.S(data)
				}
				if why := bad(got); why != "" && m.id != Unknown.ID() {
					t.Errorf("%s (n=%d): %s: %q", m.id, n, why, got)
				}
				for name := range data {
					if name != "N" && !strings.Contains(got, "«"+name+"»") {
						t.Errorf("%s: %q does not show .%s", m.id, got, name)
					}
				}
			}
		}
	})
}

// A translation lacking a message, or with one that does not render,
// shows it in English; the rest is still translated.
func TestMissingStringIsEnglish(t *testing.T) {
	de := translation(t, "de")
	delete(de, ReasonInSync.ID())
	de[ReasonBusy.ID()] = "{{.Kaputt" // a template that does not parse
	b, err := json.Marshal(de)
	if err != nil {
		t.Fatal(err)
	}
	use(fstest.MapFS{"translations/de.json": {Data: b}}, Settings{Languages: []string{"de-DE"}})
	t.Cleanup(func() { Use(Settings{}) })
	if got, want := ReasonInSync.S(), ReasonInSync.other; got != want {
		t.Errorf("missing message: %q, want English %q", got, want)
	}
	if got, want := ReasonBusy.S(), ReasonBusy.other; got != want {
		t.Errorf("broken message: %q, want English %q", got, want)
	}
	if got, want := ReasonExpired.S(), de[ReasonExpired.ID()]; got != want {
		t.Errorf("other messages: %q, want German %q", got, want)
	}
}

// Dates are written as each language writes them.
func TestDatesInEachLanguage(t *testing.T) {
	for _, tt := range []struct{ lang, date, clock string }{
		{"en", "10 Mar 2026", "9 Mar 10:42"},
		{"de", "10. März 2026", "9. März 10:42"},
		{"fr", "10 mars 2026", "9 mars 10:42"},
		{"es", "10 mar 2026", "9 mar 10:42"},
		{"ja", "2026年3月10日", "3月9日 10:42"},
	} {
		Use(Settings{Languages: []string{tt.lang}, Zone: time.UTC, Now: func() time.Time { return t0 }})
		if got := Date(t0); got != tt.date {
			t.Errorf("%s: Date = %q, want %q", tt.lang, got, tt.date)
		}
		if got := Clock(t0.Add(-24 * time.Hour)); got != tt.clock {
			t.Errorf("%s: Clock = %q, want %q", tt.lang, got, tt.clock)
		}
	}
	Use(Settings{})
}

// The language is the first of the Mac's preferred languages (AppleLanguages,
// as System Settings writes it, binary or XML) that Lockstep has a
// translation for, a regional variant said in its language; then the POSIX
// locale; else English.
func TestLanguageFromAppleLanguages(t *testing.T) {
	for _, tt := range []struct {
		apple []string
		lang  string // LANG
		want  string
	}{
		{[]string{"de-CH", "en-US"}, "", "de"},
		{[]string{"fr-CA"}, "", "fr"},
		{[]string{"es-419", "en"}, "", "es"},
		{[]string{"ja-JP"}, "", "ja"},
		{[]string{"de-DE"}, "", "de"},
		{[]string{"it-IT", "ja-JP", "de"}, "", "ja"}, // first supported one
		{[]string{"zh-Hans-CN", "pt-BR"}, "", "en"},
		{[]string{"en-GB", "de-DE"}, "", "en"}, // English is preferred
		{nil, "fr_FR.UTF-8", "fr"},
		{[]string{"pt-PT"}, "es_ES.UTF-8", "es"},
		{nil, "C.UTF-8", "en"},
	} {
		for _, format := range []int{plist.BinaryFormat, plist.XMLFormat} {
			name := fmt.Sprintf("%v/%s/%d", tt.apple, tt.lang, format)
			home := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("LC_ALL", "")
			t.Setenv("LC_MESSAGES", "")
			t.Setenv("LANG", tt.lang)
			if tt.apple != nil {
				b, err := plist.Marshal(map[string]any{"AppleLanguages": tt.apple, "AppleLocale": "en_US"}, format)
				if err != nil {
					t.Fatal(err)
				}
				dir := filepath.Join(home, "Library", "Preferences")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, ".GlobalPreferences.plist"), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			Use(Settings{Languages: Preferred()})
			if got := Language(); got != tt.want {
				t.Errorf("%s: language %s, want %s", name, got, tt.want)
			}
			want := ReasonInSync.other
			if tt.want != "en" {
				want = translation(t, tt.want)[ReasonInSync.ID()].(string)
			}
			if got := ReasonInSync.S(); got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
	}
	Use(Settings{})
}

// The languages asked for are kept, best first, for texts that come with
// their own translations (a Mac's password rules).
func TestLanguagesInUse(t *testing.T) {
	Use(Settings{Languages: []string{"de_DE.UTF-8", "fr"}})
	defer Use(Settings{})
	if got := InUse(); !slices.Equal(got, []string{"de-DE", "fr", "en"}) {
		t.Errorf("InUse = %v", got)
	}
	if got := Language(); got != "de" {
		t.Errorf("Language = %s", got)
	}
}

// Few translated texts are the English one: those that are, are names and
// layouts ("Lockstep", "FileVault", "{{.Step}}: {{.State}}").
func TestTranslationsAreTranslated(t *testing.T) {
	for _, l := range shipped {
		tr := translation(t, l)
		var same []string
		for _, m := range catalog {
			if s, ok := tr[m.id].(string); ok && s == m.other {
				same = append(same, m.id)
			}
		}
		if len(same) > len(catalog)/20 {
			t.Errorf("%s.json: %d of %d messages are the English text: %v", l, len(same), len(catalog), same)
		}
	}
}
