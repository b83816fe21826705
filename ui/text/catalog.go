// Package text holds every sentence Lockstep's menu-bar app and its CLI show
// a person, and turns lockstepd's codes into them. lockstepd and the
// directory send codes with parameters; this package, and only this one,
// says them, in the user's language: the app and the CLI both render from
// it, so they word everything the same way and a translation covers both.
//
// Each string has a stable ID and its English text, a text/template over the
// data given where it is used. A translation is translations/<lang>.json
// (go-i18n's format: ID to text, or to {"one": ..., "other": ...} for
// counts); translations/en.json is the template translators copy, kept equal
// to the Go source by a test (`go test ./ui/text -run TestCatalog -update`).
// A string missing from a translation is shown in English.
package text

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

//go:embed translations
var translations embed.FS

// Message is one string a person reads.
type Message struct{ id, one, other string }

// catalog lists every message, for the translation template and its tests.
var catalog []Message

// M declares a message.
func M(id, en string) Message {
	m := Message{id: id, other: en}
	catalog = append(catalog, m)
	return m
}

// PM declares a message whose form depends on a count (.N in the text).
func PM(id, one, other string) Message {
	m := Message{id: id, one: one, other: other}
	catalog = append(catalog, m)
	return m
}

// ID is the message's translation ID.
func (m Message) ID() string { return m.id }

// Pseudo is the pseudo-locale: every string is shown in English with its
// letters accented and wrapped in ⟦ ⟧, so a test can see at once any text
// on screen that did not come from this catalogue.
const Pseudo = "x-pseudo"

var (
	mu     sync.RWMutex
	bundle *i18n.Bundle
	loc    *i18n.Localizer
	pseudo bool
	zone   = time.Local
	now    = time.Now
	inUse  []string
	lang   = "en"
)

func init() { Use(Settings{}) }

// Settings say how to render: in which language, and where and when the
// reader is.
type Settings struct {
	// Languages are BCP 47 tags or POSIX locales ("de_DE.UTF-8"), best
	// first, as macOS's AppleLanguages lists them; the first whose language
	// has a translation is used ("de-CH" is said in German), else English.
	// A string a translation lacks is said in English. Pseudo selects the
	// pseudo-locale.
	Languages []string
	// Zone is where times are shown (nil: local time).
	Zone *time.Location
	// Now is the clock that says what "today" is (nil: time.Now).
	Now func() time.Time
}

// Use sets how everything is rendered from now on.
func Use(s Settings) { use(translations, s) }

// use loads the translations in fsys (translations/*.json) and renders in
// the first of s.Languages that has one.
func use(fsys fs.FS, s Settings) {
	langs, where := s.Languages, s.Zone
	b := i18n.NewBundle(language.English)
	b.RegisterUnmarshalFunc("json", json.Unmarshal)
	shipped := map[string]bool{"en": true}
	files, _ := fs.Glob(fsys, "translations/*.json")
	for _, f := range files {
		if strings.HasSuffix(f, "/en.json") {
			continue // the template is English itself
		}
		if _, err := b.LoadMessageFileFS(fsys, f); err != nil {
			panic(fmt.Sprintf("translation %s: %v", f, err))
		}
		shipped[strings.TrimSuffix(strings.TrimPrefix(f, "translations/"), ".json")] = true
	}
	tags := make([]string, 0, len(langs))
	ps := false
	for _, l := range langs {
		if l == Pseudo {
			ps = true
		}
		tags = append(tags, posixToBCP47(l))
	}
	chosen := choose(tags, shipped)
	if where == nil {
		where = time.Local
	}
	clock := s.Now
	if clock == nil {
		clock = time.Now
	}
	mu.Lock()
	bundle, loc, pseudo, zone, now = b, i18n.NewLocalizer(b, chosen), ps, where, clock
	lang = chosen
	inUse = append(tags, "en")
	mu.Unlock()
}

// choose returns the base language of the first preference that has a
// translation: macOS lists regional variants ("de-CH", "fr-CA", "es-419",
// "ja-JP"), and each is said in its language's one catalogue. English when
// none has one. This is done here rather than left to go-i18n's matcher,
// which weighs every preference and may prefer a later one.
func choose(prefs []string, shipped map[string]bool) string {
	for _, p := range prefs {
		t, err := language.Parse(p)
		if err != nil {
			continue
		}
		base, conf := t.Base()
		if conf == language.No {
			continue
		}
		if shipped[base.String()] {
			return base.String()
		}
	}
	return "en"
}

// Language is the language everything is rendered in now: "en" or the
// tag of a shipped translation.
func Language() string {
	mu.RLock()
	defer mu.RUnlock()
	return lang
}

// posixToBCP47 turns "de_DE.UTF-8" into "de-DE".
func posixToBCP47(l string) string {
	if i := strings.IndexAny(l, ".@"); i >= 0 {
		l = l[:i]
	}
	return strings.ReplaceAll(l, "_", "-")
}

// Languages are the tags of the shipped translations, English first.
func Languages() []string {
	out := []string{"en"}
	files, _ := fs.Glob(translations, "translations/*.json")
	for _, f := range files {
		if t := strings.TrimSuffix(strings.TrimPrefix(f, "translations/"), ".json"); t != "en" {
			out = append(out, t)
		}
	}
	return out
}

// InUse are the languages asked for, best first, then English: for texts
// that come with their own translations (a Mac's password rules).
func InUse() []string {
	mu.RLock()
	defer mu.RUnlock()
	return append([]string(nil), inUse...)
}

// S renders the message with data (a map of the names its text uses).
func (m Message) S(data ...map[string]any) string {
	d := map[string]any{}
	for _, x := range data {
		for k, v := range x {
			d[k] = v
		}
	}
	return m.render(d, nil)
}

// N renders the form of a counted message for n (.N in its text).
func (m Message) N(n int, data ...map[string]any) string {
	d := map[string]any{"N": n}
	for _, x := range data {
		for k, v := range x {
			d[k] = v
		}
	}
	return m.render(d, n)
}

func (m Message) render(data map[string]any, count any) string {
	mu.RLock()
	l, ps := loc, pseudo
	mu.RUnlock()
	if ps {
		src := m.other
		if count == 1 && m.one != "" {
			src = m.one
		}
		return "⟦" + execute(m.id, pseudoText(src), data) + "⟧"
	}
	dm := &i18n.Message{ID: m.id, Other: m.other, One: m.one}
	out, err := l.Localize(&i18n.LocalizeConfig{DefaultMessage: dm, TemplateData: data, PluralCount: count})
	if err != nil {
		if fallback != nil {
			fallback(m.id, err)
		}
		// A translation that does not render falls back to English.
		src := m.other
		if count == 1 && m.one != "" {
			src = m.one
		}
		return execute(m.id, src, data)
	}
	return out
}

// fallback, when set (by tests), hears of every message said in English
// because its translation did not render.
var fallback func(id string, err error)

func execute(id, src string, data map[string]any) string {
	t, err := template.New(id).Option("missingkey=zero").Parse(src)
	if err != nil {
		return src
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return src
	}
	return b.String()
}

// pseudoText accents the letters of a template's literal text, leaving its
// {{actions}} alone.
func pseudoText(src string) string {
	var b strings.Builder
	for len(src) > 0 {
		i := strings.Index(src, "{{")
		if i < 0 {
			i = len(src)
		}
		for _, r := range src[:i] {
			b.WriteRune(accent(r))
		}
		src = src[i:]
		if j := strings.Index(src, "}}"); j >= 0 {
			b.WriteString(src[:j+2])
			src = src[j+2:]
		}
	}
	return b.String()
}

var accents = map[rune]rune{'a': 'á', 'e': 'é', 'i': 'í', 'o': 'ó', 'u': 'ú', 'y': 'ý', 'c': 'ç', 'n': 'ñ',
	'A': 'Á', 'E': 'É', 'I': 'Í', 'O': 'Ó', 'U': 'Ú', 'Y': 'Ý', 'C': 'Ç', 'N': 'Ñ'}

func accent(r rune) rune {
	if a, ok := accents[r]; ok {
		return a
	}
	return r
}

// IsPseudo reports whether s was rendered in the pseudo-locale: every
// visible text a test finds must be, or be data (a name, a path, a number).
func IsPseudo(s string) bool { return strings.Contains(s, "⟦") && strings.Contains(s, "⟧") }

// Clock shows t where the user is: a time of day when it is today, else
// with the day.
func Clock(t time.Time) string {
	mu.RLock()
	z, today := zone, now()
	mu.RUnlock()
	t, today = t.In(z), today.In(z)
	if y, m, d := t.Date(); y == today.Year() && m == today.Month() && d == today.Day() {
		return t.Format("15:04")
	}
	return DayTime.S(map[string]any{"Day": t.Day(), "Month": months[t.Month()-1].S(), "Time": t.Format("15:04")})
}

// Date shows t as a day.
func Date(t time.Time) string {
	mu.RLock()
	z := zone
	mu.RUnlock()
	t = t.In(z)
	return DayMonthYear.S(map[string]any{"Day": t.Day(), "Month": months[t.Month()-1].S(), "Year": t.Year()})
}

// How days are written, and the months' names.
var (
	DayTime      = M("date.day_time", "{{.Day}} {{.Month}} {{.Time}}")
	DayMonthYear = M("date.day_month_year", "{{.Day}} {{.Month}} {{.Year}}")
	months       = [12]Message{
		M("month.1", "Jan"), M("month.2", "Feb"), M("month.3", "Mar"), M("month.4", "Apr"), M("month.5", "May"), M("month.6", "Jun"),
		M("month.7", "Jul"), M("month.8", "Aug"), M("month.9", "Sep"), M("month.10", "Oct"), M("month.11", "Nov"), M("month.12", "Dec"),
	}
)
