// Package browsertest drives Debian's Chromium, headless, from tests with
// chromedp: one browser per test binary (started on first use, stopped by
// Main), a fresh browser context (its own cookies) per page, and the steps
// a person takes: type into a labelled field, press a key, click, read the
// page. It also injects axe-core into a page and fails on serious or
// critical findings, and compares full-page screenshots with golden PNGs
// tolerantly (fonts render a little differently from machine to machine).
//
// The browser trusts exactly one server key: the one Cert makes for the
// test binary (Chromium's --ignore-certificate-errors-spki-list pins its
// SubjectPublicKeyInfo), so the servers under test use real TLS with that
// certificate and the browser verifies it. Without Chromium a test skips,
// or fails when the environment says CI=true (.ci/run installs it).
package browsertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

//go:embed axe/axe.min.js
var axeSource string

var (
	once     sync.Once
	shared   *Browser
	startErr error
	certOnce sync.Once
	cert     certFiles
	certErr  error
)

type certFiles struct {
	dir, cert, key, pin string
}

// Main runs the tests and stops the browser. Call it from TestMain, or
// call Stop from a TestMain of one's own.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the browser and removes the certificate.
func Stop() {
	if shared != nil {
		shared.close()
		shared = nil
	}
	if cert.dir != "" {
		_ = os.RemoveAll(cert.dir)
		cert.dir = ""
	}
}

// Cert returns the server certificate and key files every server under
// test must present (for 127.0.0.1, ::1 and localhost): the browser
// trusts that key and no other.
func Cert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	certOnce.Do(func() { cert, certErr = makeCert() })
	if certErr != nil {
		t.Fatalf("browsertest: making the server certificate: %v", certErr)
	}
	return cert.cert, cert.key
}

func makeCert() (certFiles, error) {
	dir, err := os.MkdirTemp("", "browsertest-cert-")
	if err != nil {
		return certFiles{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return certFiles{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lockstep browser tests"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return certFiles{}, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return certFiles{}, err
	}
	c := certFiles{dir: dir, cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(c.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return c, err
	}
	if err := os.WriteFile(c.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return c, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return c, err
	}
	sum := sha256.Sum256(spki)
	c.pin = base64.StdEncoding.EncodeToString(sum[:])
	return c, nil
}

// Browser is one headless Chromium.
type Browser struct {
	dir         string
	allocCancel context.CancelFunc
	ctx         context.Context
	cancel      context.CancelFunc
}

// execPath finds Debian's Chromium.
func execPath() (string, error) {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	return "", errors.New("chromium is not installed (apt-get install chromium)")
}

// Need returns the test binary's browser, starting it on first use.
func Need(t testing.TB) *Browser {
	t.Helper()
	Cert(t)
	once.Do(func() { shared, startErr = start() })
	if startErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browsertest: %v", startErr)
		}
		t.Skipf("browsertest: %v", startErr)
	}
	return shared
}

func start() (*Browser, error) {
	path, err := execPath()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "browsertest-profile-")
	if err != nil {
		return nil, err
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("ignore-certificate-errors-spki-list", cert.pin),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 900),
		chromedp.Env("TZ=UTC", "LANG=en_US.UTF-8"),
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		allocCancel()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	return &Browser{dir: dir, allocCancel: allocCancel, ctx: ctx, cancel: cancel}, nil
}

func (b *Browser) close() {
	b.cancel()
	b.allocCancel()
	_ = os.RemoveAll(b.dir)
}

// Page is a tab in its own browser context: its own cookies, as a new
// private window has.
type Page struct {
	t      testing.TB
	ctx    context.Context
	cancel context.CancelFunc
}

// NewPage opens a tab in a fresh browser context, closed when the test
// ends.
func (b *Browser) NewPage(t testing.TB) *Page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("browsertest: opening a tab: %v", err)
	}
	p := &Page{t: t, ctx: ctx, cancel: cancel}
	t.Cleanup(cancel)
	return p
}

// step is the bound on one action: a page that does not answer fails the
// test instead of hanging it.
const step = 20 * time.Second

// Do runs chromedp actions, failing the test on error.
func (p *Page) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %s: %v (page %s)", what, err, p.URL())
	}
}

// run runs one action that returns a value.
func run[T any](p *Page, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.t.Fatalf("browser: %s: %v (page %s)", what, err, p.URL())
	}
	return v
}

// Context is the tab's context, for chromedp actions of a test's own.
func (p *Page) Context() context.Context { return p.ctx }

// Go navigates to url and waits for the page.
func (p *Page) Go(url string) {
	p.t.Helper()
	p.Do("opening "+url, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body")))
}

// Type types text into the field found by selector, as keystrokes.
func (p *Page) Type(selector, text string) {
	p.t.Helper()
	sel := chromedp.CSS(selector)
	// Empty the field as selecting its text and deleting it would (chromedp's
	// Clear resets the value attribute, not what was typed).
	clearJS := fmt.Sprintf(`(function(){const e=document.querySelector(%q); e.value=""; e.dispatchEvent(new Event("input",{bubbles:true})); return true})()`, selector)
	p.Do("typing into "+selector, chromedp.WaitVisible(sel), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](clearJS)(ctx, t)
		return err
	}), chromedp.SendKeys(sel, text))
}

// Click clicks the element found by selector (a link, a submit button)
// and waits for the page it leads to.
func (p *Page) Click(selector string) {
	p.t.Helper()
	sel := chromedp.CSS(selector)
	p.Do("marking the page", chromedp.WaitVisible(sel), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`window.__browsertestOld = true`)(ctx, t)
		return err
	}))
	p.Do("clicking "+selector, chromedp.Click(sel))
	p.waitNewPage("clicking " + selector)
}

// Submit presses Enter in the field found by selector, as a person
// submits a form from the keyboard, and waits for the next page.
func (p *Page) Submit(selector string) {
	p.t.Helper()
	p.Do("marking the page", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`window.__browsertestOld = true`)(ctx, t)
		return err
	}))
	p.Do("pressing Enter in "+selector, chromedp.SendKeys(chromedp.CSS(selector), "\r"))
	p.waitNewPage("submitting " + selector)
}

// PressNav presses keys on the focused element and waits for the next
// page (Enter on a focused button or link).
func (p *Page) PressNav(keys string) {
	p.t.Helper()
	p.Do("marking the page", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`window.__browsertestOld = true`)(ctx, t)
		return err
	}))
	p.Do("pressing keys", chromedp.KeyEvent(keys))
	p.waitNewPage("pressing keys")
}

// waitNewPage waits until the marked page is replaced by a loaded one.
func (p *Page) waitNewPage(what string) {
	p.t.Helper()
	deadline := time.Now().Add(step)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!window.__browsertestOld && document.readyState === "complete"`))
		cancel()
		if err == nil && done {
			return
		}
		time.Sleep(15 * time.Millisecond)
	}
	p.t.Fatalf("browser: %s: no new page came (page %s)", what, p.URL())
}

// Check clicks a checkbox, a radio button or anything else that does not
// leave the page.
func (p *Page) Check(selector string) {
	p.t.Helper()
	sel := chromedp.CSS(selector)
	p.Do("clicking "+selector, chromedp.WaitVisible(sel), chromedp.Click(sel))
}

// Press sends keys (kb constants, or text) to the focused element.
func (p *Page) Press(keys string) {
	p.t.Helper()
	p.Do("pressing keys", chromedp.KeyEvent(keys))
}

// WaitFor waits until selector matches a visible element.
func (p *Page) WaitFor(selector string) {
	p.t.Helper()
	p.Do("waiting for "+selector, chromedp.WaitVisible(chromedp.CSS(selector)))
}

// Text is the visible text of the element found by selector.
func (p *Page) Text(selector string) string {
	p.t.Helper()
	sel := chromedp.CSS(selector)
	p.Do("waiting for "+selector, chromedp.WaitReady(sel))
	return run(p, "reading "+selector, chromedp.Text(sel))
}

// Has reports whether selector matches an element now.
func (p *Page) Has(selector string) bool {
	p.t.Helper()
	return Eval[int](p, fmt.Sprintf("document.querySelectorAll(%q).length", selector)) > 0
}

// Eval evaluates a script in the page.
func Eval[T any](p *Page, script string) T {
	p.t.Helper()
	return run(p, "evaluating a script", chromedp.Evaluate[T](script))
}

// URL is the page's address now.
func (p *Page) URL() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	u, _ := chromedp.Run(ctx, chromedp.Location())
	return u
}

// Title is the page's title.
func (p *Page) Title() string {
	p.t.Helper()
	return run(p, "reading the title", chromedp.Title())
}

// Focused describes the element that has the keyboard focus: its id, or
// its tag and text.
func (p *Page) Focused() string {
	p.t.Helper()
	return Eval[string](p, `(function(){const e=document.activeElement; if(!e) return ""; return e.id ? "#"+e.id : e.tagName.toLowerCase()+":"+(e.textContent||"").trim()})()`)
}

// AxeViolation is one rule axe-core found broken.
type AxeViolation struct {
	ID          string `json:"id"`
	Impact      string `json:"impact"`
	Description string `json:"description"`
	Help        string `json:"help"`
	Nodes       []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// Axe injects axe-core into the page, runs every WCAG 2 A and AA rule and
// best practice, and fails the test on each serious or critical finding;
// it returns all findings.
func (p *Page) Axe(what string) []AxeViolation {
	p.t.Helper()
	vs := p.AxeAll(what)
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			var where []string
			for _, n := range v.Nodes {
				where = append(where, n.HTML)
			}
			p.t.Errorf("axe-core on %s: %s (%s): %s; at %v", what, v.ID, v.Impact, v.Help, where)
		}
	}
	return vs
}

// AxeAll runs axe-core as Axe does and returns every finding, failing
// nothing.
func (p *Page) AxeAll(what string) []AxeViolation {
	p.t.Helper()
	p.Do("injecting axe-core into "+what, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](axeSource+";true")(ctx, t)
		return err
	}))
	res := run(p, "running axe-core on "+what, chromedp.Evaluate[string](
		`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`, chromedp.EvalAwaitPromise))
	var vs []AxeViolation
	if err := json.Unmarshal([]byte(res), &vs); err != nil {
		p.t.Fatalf("axe-core on %s: decoding its answer: %v", what, err)
	}
	return vs
}
