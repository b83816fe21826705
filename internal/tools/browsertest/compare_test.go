package browsertest

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"
)

func pngOf(t *testing.T, w, h int, paint func(x, y int) color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, paint(x, y))
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The tolerance lets anti-aliasing through and nothing a person would see.
func TestCompare(t *testing.T) {
	white := func(int, int) color.Color { return color.White }
	base := pngOf(t, 200, 100, white)
	for _, tc := range []struct {
		name string
		img  []byte
		same bool
	}{
		{"identical", pngOf(t, 200, 100, white), true},
		{"faint noise everywhere", pngOf(t, 200, 100, func(x, y int) color.Color { return color.Gray{Y: uint8(250 - (x+y)%8)} }), true},
		{"a few strong pixels (0.5%)", pngOf(t, 200, 100, func(x, y int) color.Color {
			if y == 0 && x < 100 {
				return color.Black
			}
			return color.White
		}), true},
		{"a block of text (5%)", pngOf(t, 200, 100, func(x, y int) color.Color {
			if y < 5 {
				return color.Black
			}
			return color.White
		}), false},
		{"another colour", pngOf(t, 200, 100, func(int, int) color.Color { return color.RGBA{R: 200, G: 60, B: 60, A: 255} }), false},
		{"taller", pngOf(t, 200, 160, white), false},
	} {
		if got := compare(base, tc.img) == ""; got != tc.same {
			t.Errorf("%s: passes %v, want %v (%s)", tc.name, got, tc.same, compare(base, tc.img))
		}
	}
}
