//go:build cgo || !darwin

package ui

import (
	"fmt"
	"image"
	"os"
	"strings"
	"testing"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstep-dev/lockstep/agent/agenttest"
	"github.com/lockstep-dev/lockstep/ui/text"
)

// The Change window in each shipped language, as a Mac set to that
// language (a regional variant, as System Settings lists it) shows it: with
// MFA, a new password typed and a confirmation that does not match, so the
// code box, its help, the checklist and the mismatch message are all on
// screen. Every word must fit: nothing runs past the window's edge, no
// label is given less room than it needs, and no word of a wrapped text is
// wider than its line (German's compounds would otherwise be broken
// mid-word).
func TestChangeInEachLanguage(t *testing.T) {
	for _, tt := range []struct{ mac, lang, want string }{
		{"de-CH", "de", "Passwort ändern"},
		{"fr-CA", "fr", "Modifier le mot de passe"},
		{"es-419", "es", "Cambiar contraseña"},
		{"ja-JP", "ja", "パスワードを変更"},
	} {
		t.Run(tt.lang, func(t *testing.T) {
			if tt.lang == "ja" {
				needCJKFont(t)
			}
			h := newHarness(t, setup{world: agenttest.Options{MFA: true}, languages: []string{tt.mac, "en-US"}})
			if got := text.Language(); got != tt.lang {
				t.Fatalf("the Mac's %s gives %s", tt.mac, got)
			}
			c := openChange(h)
			if c.w.Title() != tt.want {
				t.Errorf("window title %q, want %q", c.w.Title(), tt.want)
			}
			fillChange(c, password, "Brand-new-Pass-42", "Brand-new", "")
			if got := visibleMsg(c.confirm.msg); got != text.ConfirmMismatch.S() || got == "The passwords do not match" {
				t.Errorf("mismatch message %q", got)
			}
			for _, v := range []fyne.ThemeVariant{theme.VariantLight, theme.VariantDark} {
				test.ApplyTheme(t, WithVariant(theme.DefaultTheme(), v))
				h.app.themeChanged()
				fit(c.w)
				if cut := cutOff(c.w); len(cut) > 0 {
					t.Errorf("cut off in %s:\n%s", tt.lang, strings.Join(cut, "\n"))
				}
			}
			h.shot("change-"+tt.lang, c.w)
		})
	}
}

// cutOff lists every text in w that does not fit where it is shown.
func cutOff(w fyne.Window) []string {
	var out []string
	win := w.Canvas().Size()
	d := fyne.CurrentApp().Driver()
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if o == nil || !o.Visible() {
			return
		}
		pos, size, min := d.AbsolutePositionForObject(o), o.Size(), o.MinSize()
		say := func(s, why string) { out = append(out, fmt.Sprintf("  %T %q: %s", o, s, why)) }
		shown := ""
		switch v := o.(type) {
		case *fyne.Container:
			for _, c := range v.Objects {
				walk(c)
			}
			return
		case *widget.Label:
			shown = v.Text
			if v.Wrapping == fyne.TextWrapWord {
				pad := 2 * theme.InnerPadding()
				ts := theme.TextSize()
				if v.SizeName != "" {
					ts = theme.Size(v.SizeName)
				}
				for _, word := range words(v.Text) {
					if ww := fyne.MeasureText(word, ts, v.TextStyle).Width; ww+pad > size.Width+0.5 {
						say(v.Text, fmt.Sprintf("the word %q is %.0f wide, its line %.0f", word, ww, size.Width-pad))
					}
				}
			}
		case *canvas.Text:
			shown = v.Text
		case *lineText:
			shown = v.Text
			for _, word := range words(v.Text) {
				if ww := fyne.MeasureText(word, v.size, fyne.TextStyle{}).Width; ww > size.Width+0.5 {
					say(v.Text, fmt.Sprintf("the word %q is %.0f wide, its line %.0f", word, ww, size.Width))
				}
			}
		case *button:
			shown = v.Text
		case *check:
			shown = v.Text
		case *secretEntry:
			shown = v.PlaceHolder
		default:
			shown = ""
		}
		if shown == "" {
			return
		}
		if size.Width+0.5 < min.Width || size.Height+0.5 < min.Height {
			say(shown, fmt.Sprintf("given %v, needs %v", size, min))
		}
		if pos.X < -0.5 || pos.Y < -0.5 || pos.X+size.Width > win.Width+0.5 || pos.Y+size.Height > win.Height+0.5 {
			say(shown, fmt.Sprintf("at %v size %v, outside the %v window", pos, size, win))
		}
	}
	walk(w.Content())
	return out
}

// words are the pieces of s a line may not break: what is between spaces,
// except that Japanese breaks between any two of its characters (kana,
// kanji and their punctuation), so each of those is a piece of its own.
func words(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		run := ""
		for _, r := range f {
			if unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) || r >= 0x3000 && r <= 0x303f || r >= 0xff00 && r <= 0xffef {
				if run != "" {
					out = append(out, run)
					run = ""
				}
				out = append(out, string(r))
				continue
			}
			run += string(r)
		}
		if run != "" {
			out = append(out, run)
		}
	}
	return out
}

// The check has to fail on a label pushed past the window's edge, on a
// label squeezed below its size and on a word too long for its line, and
// pass a window where everything fits.
func TestCutOffCheckCatches(t *testing.T) {
	test.NewTempApp(t)
	long := "Anmeldeschlüsselbundwiederherstellungsassistent"
	fits := test.NewWindow(container.NewVBox(widget.NewLabel("Passwort ändern"), wrapLabel("Ihr Anmeldeschlüsselbund und FileVault.")))
	defer fits.Close()
	fit(fits)
	if cut := cutOff(fits); len(cut) > 0 {
		t.Errorf("a window that fits is said cut off: %v", cut)
	}
	if got := words("Mac-Account: 新しいパスワード、FileVault"); strings.Join(got, "|") != "Mac-Account:|新|し|い|パ|ス|ワ|ー|ド|、|FileVault" {
		t.Errorf("words = %q", got)
	}
	for name, content := range map[string]fyne.CanvasObject{
		"past the edge": container.NewHBox(widget.NewLabel(long), widget.NewLabel(long), widget.NewLabel(long)),
		"squeezed":      container.NewGridWithColumns(2, widget.NewLabel(long+long), widget.NewLabel("x")),
		"long word":     wrapLabel(long + long + " ok"),
	} {
		w := test.NewWindow(content)
		w.SetFixedSize(true)
		w.Resize(fyne.NewSize(windowWidth, 200))
		content.Resize(fyne.NewSize(windowWidth-2*theme.Padding(), 200))
		if cut := cutOff(w); len(cut) == 0 {
			t.Errorf("%s: not caught", name)
		}
		w.Close()
	}
}

// needCJKFont skips a test whose words are Japanese when this machine has
// no font with Japanese glyphs (Fyne's own font has none; on a Mac, Fyne
// finds the system's Hiragino), and fails it in CI, which installs
// fonts-noto-cjk. It also checks the glyphs are drawn: distinct kana and
// kanji drawn alone must differ from each other and from a character no
// font has, which a font without them draws as the same empty box.
func needCJKFont(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"); err != nil && os.Getenv("CI") != "true" {
		if _, err := os.Stat("/System/Library/Fonts"); err != nil {
			t.Skip("no font with Japanese glyphs here: install fonts-noto-cjk")
		}
	}
	test.NewTempApp(t)
	draw := func(s string) image.Image {
		tx := canvas.NewText(s, theme.Color(theme.ColorNameForeground))
		tx.TextSize = 24
		w := test.NewWindow(tx)
		defer w.Close()
		w.Resize(fyne.NewSize(60, 40))
		return w.Canvas().Capture()
	}
	none := draw("\U000F0001") // private use: no font draws it
	seen := map[string]image.Image{}
	for _, s := range []string{"パ", "ス", "ワ", "ド", "変", "更"} {
		img := draw(s)
		if compareImages(none, img) == "" {
			t.Fatalf("%q is drawn as an empty box: no font with Japanese glyphs was found", s)
		}
		for o, prev := range seen {
			if compareImages(prev, img) == "" {
				t.Fatalf("%q and %q are drawn alike: no font with Japanese glyphs was found", s, o)
			}
		}
		seen[s] = img
	}
}
