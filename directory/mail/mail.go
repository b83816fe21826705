// Package mail sends the directory's outgoing mail (password reset links)
// through a configured SMTP server, always over TLS with a verified
// certificate: smtps:// (TLS from the first byte, RFC 8314) or smtp://
// with STARTTLS, which must be offered (a server that does not offer it is
// refused, never talked to in the clear). It uses net/smtp, which is
// frozen but complete for submitting one message with AUTH PLAIN.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config configures a Mailer.
type Config struct {
	// URL is smtps://[USER@]HOST[:PORT] (default port 465) or
	// smtp://[USER@]HOST[:PORT] (default 587, STARTTLS required). A user
	// in the URL signs in with Password (AUTH PLAIN, only over TLS).
	URL string
	// From is the sender's address (name@example.com).
	From string
	// Password is the SMTP user's password; it never comes from the URL.
	Password []byte
	// RootCAs verifies the server's certificate (nil: the system roots).
	RootCAs *x509.CertPool
	// Timeout bounds one message's whole exchange (default 30 s).
	Timeout time.Duration
	// Hello is the name sent in EHLO (default: the host name).
	Hello string
}

// Message is one plain-text message to one recipient.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Mailer sends messages; it holds no connection between them.
type Mailer struct {
	host, port string
	implicit   bool
	user       string
	password   []byte
	from       string
	roots      *x509.CertPool
	timeout    time.Duration
	hello      string
	now        func() time.Time
}

// New checks cfg and returns a Mailer. Errors name the setting at fault
// and never quote the password.
func New(cfg Config) (*Mailer, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, errors.New("the SMTP URL must be smtps://HOST[:PORT] or smtp://HOST[:PORT]")
	}
	m := &Mailer{roots: cfg.RootCAs, timeout: cfg.Timeout, hello: cfg.Hello, now: time.Now}
	switch u.Scheme {
	case "smtps":
		m.implicit, m.port = true, "465"
	case "smtp":
		m.port = "587"
	default:
		return nil, fmt.Errorf("the SMTP URL's scheme must be smtps or smtp (with STARTTLS), not %q", u.Scheme)
	}
	if _, set := u.User.Password(); set {
		return nil, errors.New("the SMTP URL must not hold a password: give it in a file")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("the SMTP URL takes no path or query")
	}
	m.host = u.Hostname()
	if p := u.Port(); p != "" {
		m.port = p
	}
	if u.User != nil {
		m.user = u.User.Username()
	}
	switch {
	case m.user != "" && len(cfg.Password) == 0:
		return nil, fmt.Errorf("the SMTP user %s needs a password", m.user)
	case m.user == "" && len(cfg.Password) > 0:
		return nil, errors.New("an SMTP password needs a user in the URL (smtp://USER@HOST)")
	}
	m.password = append([]byte(nil), cfg.Password...)
	from, err := mail.ParseAddress(cfg.From)
	if err != nil || from.Name != "" || from.Address != strings.TrimSpace(cfg.From) || strings.ContainsAny(cfg.From, "\r\n") {
		return nil, fmt.Errorf("the sender address %q is not valid (give it as name@example.com)", cfg.From)
	}
	m.from = from.Address
	if m.timeout <= 0 {
		m.timeout = 30 * time.Second
	}
	if m.hello == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			m.hello = h
		} else {
			m.hello = "localhost"
		}
	}
	return m, nil
}

// Server names the server for logs: HOST:PORT and how TLS starts.
func (m *Mailer) Server() string {
	if m.implicit {
		return "smtps://" + net.JoinHostPort(m.host, m.port)
	}
	return "smtp://" + net.JoinHostPort(m.host, m.port)
}

// Check connects, starts TLS, signs in and quits, without sending.
func (m *Mailer) Check(ctx context.Context) error {
	c, err := m.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Quit()
}

// Send delivers msg. A recipient or subject with a line break (a header
// injection) is refused before connecting.
func (m *Mailer) Send(ctx context.Context, msg Message) error {
	to, err := mail.ParseAddress(msg.To)
	if err != nil || to.Name != "" || strings.ContainsAny(msg.To, "\r\n") {
		return errors.New("the recipient's address is not valid")
	}
	if strings.ContainsAny(msg.Subject, "\r\n") {
		return errors.New("a subject cannot hold a line break")
	}
	data, err := m.format(to.Address, msg)
	if err != nil {
		return err
	}
	c, err := m.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail(m.from); err != nil {
		return fmt.Errorf("the SMTP server refused the sender: %w", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fmt.Errorf("the SMTP server refused the recipient: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("the SMTP server refused the message: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("sending the message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("the SMTP server refused the message: %w", err)
	}
	return c.Quit()
}

// dial connects and gets to a signed-in TLS session.
func (m *Mailer) dial(ctx context.Context) (*smtp.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	addr := net.JoinHostPort(m.host, m.port)
	tlsCfg := &tls.Config{ServerName: m.host, RootCAs: m.roots, MinVersion: tls.VersionTLS12}
	var conn net.Conn
	var err error
	if m.implicit {
		conn, err = (&tls.Dialer{Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to the SMTP server %s: %w", addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("the SMTP server %s: %w", addr, err)
	}
	fail := func(err error) (*smtp.Client, error) {
		c.Close()
		return nil, err
	}
	if err := c.Hello(m.hello); err != nil {
		return fail(fmt.Errorf("the SMTP server %s refused EHLO: %w", addr, err))
	}
	if !m.implicit {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fail(fmt.Errorf("the SMTP server %s does not offer STARTTLS; Lockstep sends no mail in the clear", addr))
		}
		if err := c.StartTLS(tlsCfg); err != nil {
			return fail(fmt.Errorf("starting TLS with the SMTP server %s: %w", addr, err))
		}
	}
	if m.user != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fail(fmt.Errorf("the SMTP server %s does not offer AUTH", addr))
		}
		if err := c.Auth(smtp.PlainAuth("", m.user, string(m.password), m.host)); err != nil {
			return fail(fmt.Errorf("the SMTP server %s refused the user %s: %w", addr, m.user, err))
		}
	}
	return c, nil
}

// format builds the message: UTF-8 text, quoted-printable, a Date and a
// Message-ID, the subject encoded per RFC 2047.
func (m *Mailer) format(to string, msg Message) ([]byte, error) {
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("making a message id: %w", err)
	}
	domain := m.from[strings.LastIndexByte(m.from, '@')+1:]
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", m.from)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", msg.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", m.now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", hex.EncodeToString(id[:]), domain)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	body := strings.ReplaceAll(strings.ReplaceAll(msg.Body, "\r\n", "\n"), "\n", "\r\n")
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}
