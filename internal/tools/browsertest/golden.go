package browsertest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

var update = flag.Bool("update-screenshots", false, "write the browser tests' golden screenshots instead of comparing")

// Scheme emulates the system's light or dark appearance
// (prefers-color-scheme) for the page.
func (p *Page) Scheme(dark bool) {
	p.t.Helper()
	v := "light"
	if dark {
		v = "dark"
	}
	p.Do("emulating the "+v+" appearance", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}})
		return err
	}))
}

// Screenshot is a PNG of the whole page.
func (p *Page) Screenshot() []byte {
	p.t.Helper()
	// Let fonts and layout settle.
	run(p, "waiting for fonts", chromedp.Evaluate[bool](`document.fonts.ready.then(() => true)`, chromedp.EvalAwaitPromise))
	return run(p, "taking a screenshot", chromedp.FullScreenshot(100))
}

// Golden compares a screenshot of the page with dir/name.png, tolerantly:
// it fails when the sizes differ by more than a few pixels or when more
// than 1% of the pixels differ by more than a quarter of the range in a
// channel (anti-aliasing and hinting differ from machine to machine; a
// changed layout, text or colour does not pass). With -update-screenshots
// it writes the file instead.
func (p *Page) Golden(dir, name string) {
	p.t.Helper()
	got := p.Screenshot()
	path := filepath.Join(dir, name+".png")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			p.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		p.t.Fatalf("golden screenshot %s: %v (run the test with -update-screenshots to make it)", path, err)
	}
	if msg := compare(want, got); msg != "" {
		out := filepath.Join(os.TempDir(), fmt.Sprintf("%s-got-%d.png", name, time.Now().UnixNano()))
		_ = os.WriteFile(out, got, 0o644)
		p.t.Errorf("screenshot %s differs from %s: %s (this run's is %s; -update-screenshots accepts it)", name, path, msg, out)
	}
}

// compare says how two PNGs differ beyond the tolerance, or "".
func compare(a, b []byte) string {
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		return "golden: " + err.Error()
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return "screenshot: " + err.Error()
	}
	ra, rb := ia.Bounds(), ib.Bounds()
	if abs(ra.Dx()-rb.Dx()) > 4 || abs(ra.Dy()-rb.Dy()) > 24 {
		return fmt.Sprintf("size %dx%d, want %dx%d", rb.Dx(), rb.Dy(), ra.Dx(), ra.Dy())
	}
	w, h := min(ra.Dx(), rb.Dx()), min(ra.Dy(), rb.Dy())
	bad := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if pixelDiff(ia, ib, ra.Min.X+x, ra.Min.Y+y, rb.Min.X+x, rb.Min.Y+y) > 0x4000 {
				bad++
			}
		}
	}
	if frac := float64(bad) / float64(w*h); frac > 0.01 {
		return fmt.Sprintf("%.2f%% of the pixels differ", 100*frac)
	}
	return ""
}

func pixelDiff(a, b image.Image, ax, ay, bx, by int) uint32 {
	r1, g1, b1, _ := a.At(ax, ay).RGBA()
	r2, g2, b2, _ := b.At(bx, by).RGBA()
	return max(absu(r1, r2), absu(g1, g2), absu(b1, b2))
}

func absu(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
