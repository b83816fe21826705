//go:build cgo || !darwin

package ui

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"sync"

	"fyne.io/fyne/v2"
	"golang.org/x/image/vector"
)

// iconKind is what the tray icon says at a glance. Each kind has its own
// shape, so it reads without colour (macOS draws menu-bar icons as
// single-colour template images).
type iconKind int

const (
	iconInSync    iconKind = iota // padlock with a tick cut out
	iconAttention                 // padlock with an exclamation-mark badge
	iconBusy                      // padlock with three dots cut out
	iconOffline                   // padlock outline, struck through
	iconError                     // padlock with a cross badge
)

var iconNames = [...]string{"in-sync", "attention", "busy", "offline", "error"}

func (k iconKind) String() string { return iconNames[k] }

// Colours of the full-colour icons (Linux trays); template icons are black.
var (
	colLock      = color.NRGBA{0x6b, 0x72, 0x80, 0xff}
	colInSync    = color.NRGBA{0x16, 0x8a, 0x45, 0xff}
	colBusy      = color.NRGBA{0x25, 0x63, 0xeb, 0xff}
	colAttention = color.NRGBA{0xe8, 0x8a, 0x00, 0xff}
	colError     = color.NRGBA{0xd3, 0x2f, 0x2f, 0xff}
)

// trayIconSize is the side of a tray icon in pixels; trays scale it down.
const trayIconSize = 64

var (
	iconMu    sync.Mutex
	iconCache = map[[2]int]fyne.Resource{}
)

// trayIcon returns the PNG for kind: a black template image when template
// (macOS tints it for the menu bar's appearance), else in colour.
func trayIcon(kind iconKind, template bool) fyne.Resource {
	t := 0
	if template {
		t = 1
	}
	iconMu.Lock()
	defer iconMu.Unlock()
	key := [2]int{int(kind), t}
	if r, ok := iconCache[key]; ok {
		return r
	}
	img := drawIcon(kind, template, trayIconSize)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err) // encoding an in-memory RGBA image cannot fail
	}
	name := "lockstep-" + kind.String()
	if template {
		name += "-template"
	}
	r := fyne.NewStaticResource(name+".png", buf.Bytes())
	iconCache[key] = r
	return r
}

// Icon is the application's icon (the in-sync padlock in colour), for
// fyne.App.SetIcon and window decorations.
func Icon() fyne.Resource { return appIcon() }

// appIcon is the application's icon: the in-sync padlock, in colour.
func appIcon() fyne.Resource {
	img := drawIcon(iconInSync, false, 256)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return fyne.NewStaticResource("lockstep.png", buf.Bytes())
}

// painter draws filled shapes on a 64-unit grid scaled to the image.
type painter struct {
	dst   *image.RGBA
	scale float32
}

func (p painter) mask(path func(z *vector.Rasterizer, s float32)) *image.Alpha {
	b := p.dst.Bounds()
	z := vector.NewRasterizer(b.Dx(), b.Dy())
	path(z, p.scale)
	m := image.NewAlpha(b)
	z.Draw(m, b, image.Opaque, image.Point{})
	return m
}

// paint draws c over the image in the shape.
func (p painter) paint(c color.Color, path func(z *vector.Rasterizer, s float32)) {
	m := p.mask(path)
	draw.DrawMask(p.dst, p.dst.Bounds(), image.NewUniform(c), image.Point{}, m, image.Point{}, draw.Over)
}

// cut makes the shape transparent (anti-aliased at its edge).
func (p painter) cut(path func(z *vector.Rasterizer, s float32)) {
	m := p.mask(path)
	for i, a := range m.Pix {
		if a == 0 {
			continue
		}
		keep := 255 - uint32(a)
		px := p.dst.Pix[i*4 : i*4+4] // premultiplied: scale every channel
		for j := range px {
			px[j] = uint8(uint32(px[j]) * keep / 255)
		}
	}
}

func polygon(pts ...[2]float32) func(z *vector.Rasterizer, s float32) {
	return func(z *vector.Rasterizer, s float32) {
		z.MoveTo(pts[0][0]*s, pts[0][1]*s)
		for _, q := range pts[1:] {
			z.LineTo(q[0]*s, q[1]*s)
		}
		z.ClosePath()
	}
}

func arcPoints(cx, cy, r, a0, a1 float64, n int) [][2]float32 {
	pts := make([][2]float32, 0, n+1)
	for i := 0; i <= n; i++ {
		a := a0 + (a1-a0)*float64(i)/float64(n)
		pts = append(pts, [2]float32{float32(cx + r*math.Cos(a)), float32(cy + r*math.Sin(a))})
	}
	return pts
}

func circle(cx, cy, r float64) func(z *vector.Rasterizer, s float32) {
	return polygon(arcPoints(cx, cy, r, 0, 2*math.Pi, 64)...)
}

// line is a straight stroke of width w with round ends.
func line(x0, y0, x1, y1, w float64) []func(z *vector.Rasterizer, s float32) {
	dx, dy := x1-x0, y1-y0
	l := math.Hypot(dx, dy)
	nx, ny := -dy/l*w/2, dx/l*w/2
	body := polygon(
		[2]float32{float32(x0 + nx), float32(y0 + ny)},
		[2]float32{float32(x1 + nx), float32(y1 + ny)},
		[2]float32{float32(x1 - nx), float32(y1 - ny)},
		[2]float32{float32(x0 - nx), float32(y0 - ny)},
	)
	return []func(z *vector.Rasterizer, s float32){body, circle(x0, y0, w/2), circle(x1, y1, w/2)}
}

func roundRect(x0, y0, x1, y1, r float64) func(z *vector.Rasterizer, s float32) {
	var pts [][2]float32
	pts = append(pts, arcPoints(x1-r, y0+r, r, -math.Pi/2, 0, 8)...)
	pts = append(pts, arcPoints(x1-r, y1-r, r, 0, math.Pi/2, 8)...)
	pts = append(pts, arcPoints(x0+r, y1-r, r, math.Pi/2, math.Pi, 8)...)
	pts = append(pts, arcPoints(x0+r, y0+r, r, math.Pi, 3*math.Pi/2, 8)...)
	return polygon(pts...)
}

// shackle is the padlock's hoop: a half ring with legs down to the body.
func shackle(cx, top, rOut, rIn, legBottom float64) func(z *vector.Rasterizer, s float32) {
	cy := top + rOut
	var pts [][2]float32
	pts = append(pts, [2]float32{float32(cx - rOut), float32(legBottom)})
	pts = append(pts, arcPoints(cx, cy, rOut, math.Pi, 2*math.Pi, 24)...)
	pts = append(pts, [2]float32{float32(cx + rOut), float32(legBottom)})
	pts = append(pts, [2]float32{float32(cx + rIn), float32(legBottom)})
	pts = append(pts, arcPoints(cx, cy, rIn, 2*math.Pi, math.Pi, 24)...)
	pts = append(pts, [2]float32{float32(cx - rIn), float32(legBottom)})
	return polygon(pts...)
}

// drawIcon draws kind at size×size pixels. The padlock sits left of
// centre so that a badge fits at the top right.
func drawIcon(kind iconKind, template bool, size int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	p := painter{dst: dst, scale: float32(size) / 64}
	pick := func(c color.NRGBA) color.Color {
		if template {
			return color.Black
		}
		return c
	}
	lock := pick(colLock)
	switch kind {
	case iconInSync:
		lock = pick(colInSync)
	case iconBusy:
		lock = pick(colBusy)
	}

	const (
		bx0, by0, bx1, by1 = 8.0, 28.0, 48.0, 60.0 // body
		cx                 = 28.0                  // shackle centre
	)
	if kind == iconOffline {
		// Outline only, and a stroke through it: unmistakably "not working".
		p.paint(lock, shackle(cx, 6, 14, 9, 30))
		p.paint(lock, roundRect(bx0, by0, bx1, by1, 6))
		p.cut(roundRect(bx0+5, by0+5, bx1-5, by1-5, 2))
		for _, s := range line(6, 4, 58, 60, 9) {
			p.cut(s)
		}
		for _, s := range line(6, 4, 58, 60, 4.5) {
			p.paint(lock, s)
		}
		return dst
	}
	p.paint(lock, shackle(cx, 6, 14, 8, 30))
	p.paint(lock, roundRect(bx0, by0, bx1, by1, 6))

	switch kind {
	case iconInSync:
		for _, s := range line(18, 44, 25, 51, 5.5) {
			p.cut(s)
		}
		for _, s := range line(25, 51, 38, 37, 5.5) {
			p.cut(s)
		}
	case iconBusy:
		for _, x := range []float64{18, 28, 38} {
			p.cut(circle(x, 44, 3.6))
		}
	case iconAttention, iconError:
		const bcx, bcy, br = 49.0, 17.0, 14.0
		p.cut(circle(bcx, bcy, br+3.5)) // a gap between badge and lock
		c := pick(colAttention)
		if kind == iconError {
			c = pick(colError)
		}
		p.paint(c, circle(bcx, bcy, br))
		if kind == iconAttention {
			for _, s := range line(bcx, bcy-7, bcx, bcy+2, 4.5) {
				p.cut(s)
			}
			p.cut(circle(bcx, bcy+7.5, 2.6))
		} else {
			for _, s := range line(bcx-5.5, bcy-5.5, bcx+5.5, bcy+5.5, 4.2) {
				p.cut(s)
			}
			for _, s := range line(bcx-5.5, bcy+5.5, bcx+5.5, bcy-5.5, 4.2) {
				p.cut(s)
			}
		}
		// Cut a notch in the body too, so the lock itself differs from the
		// in-sync one even at 16 points.
		p.cut(circle(28, 44, 4.2))
		p.cut(polygon([2]float32{26, 44}, [2]float32{30, 44}, [2]float32{31, 53}, [2]float32{25, 53}))
	}
	return dst
}
