package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"
)

// enrolData is the enrolment page's: the QR code of the otpauth:// URI,
// the secret as text (for typing into an authenticator), and the end of
// the enrolment period.
type enrolData struct {
	QR     template.HTML
	Secret string
	Until  *time.Time
}

// qrSVG draws the QR code of content as an inline SVG, on the server: an
// image element would need a second request that carries the secret, and
// no third party ever sees it. The SVG holds only rectangles.
func qrSVG(content []byte) (template.HTML, error) {
	q, err := qrcode.New(string(content), qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("making the QR code: %w", err)
	}
	bm := q.Bitmap() // with its quiet zone
	n := len(bm)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="qr" role="img" aria-labelledby="qr-title" viewBox="0 0 %d %d" width="%d" height="%d" shape-rendering="crispEdges">`,
		n, n, n*6, n*6)
	b.WriteString(`<title id="qr-title">QR code of your authenticator key</title>`)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y, row := range bm {
		for x := 0; x < len(row); x++ {
			if !row[x] {
				continue
			}
			start := x
			for x < len(row) && row[x] {
				x++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", start, y, x-start, x-start)
		}
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String()), nil // #nosec: made here from booleans only
}

// groupSecret spaces a base32 secret in groups of four, as authenticator
// apps show them.
func groupSecret(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
