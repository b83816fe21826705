package text

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/lockstep-dev/lockstep/localapi"
	"github.com/lockstep-dev/lockstep/protocol"
	"github.com/lockstep-dev/lockstep/protocol/codes"
)

var update = flag.Bool("update", false, "rewrite translations/en.json")

// TestCatalog keeps translations/en.json, the template translators copy,
// equal to the messages declared in Go, and checks every message is a
// valid template with a unique ID.
func TestCatalog(t *testing.T) {
	all := map[string]any{}
	for _, m := range catalog {
		if _, dup := all[m.id]; dup {
			t.Errorf("ID %q used twice", m.id)
		}
		for _, src := range []string{m.one, m.other} {
			if src == "" {
				continue
			}
			if _, err := template.New(m.id).Parse(src); err != nil {
				t.Errorf("%s: %v", m.id, err)
			}
		}
		if strings.TrimSpace(m.other) == "" {
			t.Errorf("%s is empty", m.id)
		}
		if m.one != "" {
			all[m.id] = map[string]string{"one": m.one, "other": m.other}
		} else {
			all[m.id] = m.other
		}
	}
	if len(all) < 250 {
		t.Fatalf("only %d messages in the catalogue", len(all))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(all); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("translations", "en.json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Errorf("%s is out of date; run go test ./ui/text -run TestCatalog -update", path)
	}
}

// at is the tests' "now", and a time later that day.
var (
	t0    = time.Date(2026, 3, 10, 10, 42, 0, 0, time.UTC)
	later = t0.Add(48 * time.Minute).Format(time.RFC3339)
)

// variants lists the values a parameter takes that change the words: each
// code is rendered once per value of each such parameter it carries.
// Other parameters are data and get a sample value the text must show.
var variants = map[string][]string{
	"days":        {"-3", "0", "1", "12"},
	"kind":        {"mobile", "disabled", "network_home"},
	"which":       {"current", "previous", "neither", "old"},
	"source":      {"new", "directory", "refused"},
	"when":        {"before", "unconfirmed"},
	"step":        {"setup", "rotate", "remove"},
	"temporary":   {"", "true"},
	"local_items": {"", "/Users/alice/Library/Keychains/ABCD_renamed_20260310"},
	"node":        {"", "/Active Directory/CORP/corp.example.com"},
	"until":       {"", later},
}

// data gives each data parameter a sample value.
var data = map[string]string{
	"user": "alice", "path": "/Users/alice/Library/Keychains/login_renamed_1.keychain-db", "version": "7",
	"set_at": later, "synced": "6", "uid": "501", "home": "/Users/alice", "detail": "dscl: eDSRecordNotFound",
	"text": "an old journal's sentence", "name": "login_renamed_20260310T104200Z.keychain-db",
}

// shows is what a data parameter's sample looks like once rendered.
func shows(k, v string) string {
	if k == "set_at" || k == "until" {
		at, _ := time.Parse(time.RFC3339, v)
		return Clock(at)
	}
	return v
}

// sets enumerates the parameter sets of a code carrying keys.
func sets(t *testing.T, code string, keys []string) []map[string]string {
	out := []map[string]string{{}}
	for _, k := range keys {
		var vals []string
		switch k {
		case "error":
			vals = slices.Sorted(maps.Keys(codes.Errors))
		case "reason":
			for c := range codes.Texts {
				if strings.HasPrefix(c, "reason.") && len(codes.Texts[c]) == 0 {
					vals = append(vals, c)
				}
			}
			slices.Sort(vals)
		case "problem":
			for c := range codes.Texts {
				if strings.HasPrefix(c, "service.") {
					vals = append(vals, c)
				}
			}
			slices.Sort(vals)
		case "why":
			vals = whys[code]
		default:
			if v, ok := variants[k]; ok {
				vals = v
			} else if v, ok := data[k]; ok {
				vals = []string{v}
			} else {
				t.Fatalf("%s: parameter %q has no sample in this test", code, k)
			}
		}
		var next []map[string]string
		for _, s := range out {
			for _, v := range vals {
				c := map[string]string{k: v}
				for kk, vv := range s {
					c[kk] = vv
				}
				next = append(next, c)
			}
		}
		out = next
	}
	return out
}

var whys = map[string][]string{
	localapi.CodeForbidden:    {"web_page", "host", "no_peer", "no_account", "other_account", "root_only"},
	localapi.CodeServiceSetup: {"", "admin_password", "admin_token"},
}

// bad reports what is wrong with a rendered sentence, if anything.
func bad(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "empty"
	case strings.Contains(s, "<no value>"), strings.Contains(s, "{{"), strings.Contains(s, "%!"):
		return "unfilled template"
	case strings.Contains(s, strings.SplitN(Unknown.S(map[string]any{"code": "\x00"}), "\x00", 2)[0]):
		return "unknown code"
	case strings.Contains(s, "(<nil>)"), strings.Contains(s, "<nil>"):
		return "a nil value shown"
	}
	return ""
}

// Every Text code lockstepd can send renders, with each of its parameter
// sets, to a whole sentence that shows its data; the app and the CLI both
// say Texts through Render.
func TestEveryTextRenders(t *testing.T) { inEachLanguage(t, everyTextRenders) }

func everyTextRenders(t *testing.T) {
	n := 0
	for _, code := range slices.Sorted(maps.Keys(codes.Texts)) {
		for _, p := range sets(t, code, codes.Texts[code]) {
			got := Render(localapi.Text{Code: code, Params: p})
			n++
			if why := bad(got); why != "" {
				t.Errorf("%s %v: %s: %q", code, p, why, got)
			}
			for k, v := range p {
				if _, isData := data[k]; isData && !strings.Contains(got, shows(k, v)) {
					// The doctor's "local unread" and similar show the detail.
					t.Errorf("%s %v: %q does not show %s", code, p, got, k)
				}
			}
		}
	}
	if n < 140 {
		t.Fatalf("only %d renderings", n)
	}
}

// Every error lockstepd can send, with each parameter set, in each window
// it can reach, has its own sentence and belongs to a box or the window.
func TestEveryErrorRenders(t *testing.T) { inEachLanguage(t, everyErrorRenders) }

func everyErrorRenders(t *testing.T) {
	// Directory codes the Mac cannot act on are said generically.
	generic := map[string]bool{protocol.CodeInternal: true, protocol.CodeUnsupported: true,
		protocol.CodeUnauthorized: true, protocol.CodeIdempotencyReuse: true}
	n := 0
	for _, code := range slices.Sorted(maps.Keys(codes.Errors)) {
		for _, p := range sets(t, code, codes.Errors[code]) {
			for _, in := range []string{InChange, InSync, InLink, InRecover} {
				e := &localapi.Error{Code: code, Params: p, Detail: "detail for IT", RetryAfter: 30}
				if code == localapi.CodeMissing {
					e.Field = localapi.FieldNew
				}
				tr := Problem(e, in)
				n++
				if why := bad(tr.Text); why != "" {
					t.Errorf("%s %v in %s: %s: %q", code, p, in, why, tr.Text)
				}
				if strings.HasPrefix(tr.Text, strings.SplitN(ErrDirectory.S(), "(", 2)[0]) && !generic[code] {
					t.Errorf("%s %v in %s is said as an unknown directory refusal: %q", code, p, in, tr.Text)
				}
				if tr.Hint != "" {
					if why := bad(tr.Hint); why != "" {
						t.Errorf("%s hint: %s: %q", code, why, tr.Hint)
					}
				}
			}
		}
	}
	// A failure of the client itself, and lockstepd not running.
	for _, err := range []error{localapi.ErrUnavailable, fmt.Errorf("dial unix: %w", localapi.ErrUnavailable), fmt.Errorf("boom")} {
		if why := bad(Problem(err, InChange).Text); why != "" {
			t.Errorf("%v: %s", err, why)
		}
	}
	if n < 170 {
		t.Fatalf("only %d renderings", n)
	}
}

// Each notice kind has a title and a body, for each of its parameters.
func TestEveryNoticeRenders(t *testing.T) { inEachLanguage(t, everyNoticeRenders) }

func everyNoticeRenders(t *testing.T) {
	for _, n := range []localapi.Notice{
		{Kind: localapi.NoticeReset}, {Kind: localapi.NoticeReset, Params: map[string]string{"temporary": "true"}},
		{Kind: localapi.NoticeSynced},
		{Kind: localapi.NoticeExpiry, Params: map[string]string{"days": "0"}},
		{Kind: localapi.NoticeExpiry, Params: map[string]string{"days": "1"}},
		{Kind: localapi.NoticeExpiry, Params: map[string]string{"days": "9"}},
		{Kind: localapi.NoticeLocked}, {Kind: localapi.NoticeLocked, Params: map[string]string{"until": later}},
		{Kind: localapi.NoticeUnlocked},
	} {
		title, body := Notice(n)
		if bad(title) != "" || bad(body) != "" {
			t.Errorf("%s %v: %q / %q", n.Kind, n.Params, title, body)
		}
	}
}

// Every rule of the directory's policy is said, with its numbers.
func TestEveryRuleRenders(t *testing.T) { inEachLanguage(t, everyRuleRenders) }

func everyRuleRenders(t *testing.T) {
	p := protocol.DefaultPolicy()
	p.RequireSymbol, p.DisallowUsername, p.HistoryCount = true, true, 5
	p.MinCategories, p.DisallowNameParts, p.MinAgeDays = 3, true, 1
	for _, r := range p.Rules() {
		if got := RuleText(r.Code, p); bad(got) != "" {
			t.Errorf("rule %s: %q", r.Code, got)
		}
	}
	if got := RuleText(protocol.RuleMinLength, p); !strings.Contains(got, fmt.Sprint(p.MinLength)) {
		t.Errorf("min length rule %q", got)
	}
}

// In the pseudo-locale every message is marked, so a test of a window or
// of the CLI's output can tell catalogue text from text written elsewhere.
func TestPseudoLocaleMarksEveryMessage(t *testing.T) {
	Use(Settings{Languages: []string{Pseudo}, Zone: time.UTC, Now: func() time.Time { return t0 }})
	defer Use(Settings{})
	for _, m := range catalog {
		d := map[string]any{}
		if got := m.S(d); !IsPseudo(got) {
			t.Errorf("%s renders unmarked: %q", m.id, got)
		}
	}
	if got := Render(localapi.Text{Code: codes.ReasonInSync}); !IsPseudo(got) || strings.Contains(got, "Every place") {
		t.Errorf("pseudo render %q", got)
	}
}
