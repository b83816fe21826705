package mail

import (
	"crypto/x509"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/internal/tools/smtptest"
)

const (
	smtpUser = "lockstep"
	smtpPass = "s3cret-smtp-pässword"
	from     = "lockstep@example.com"
)

// TestSend delivers through a real SMTP server (aiosmtpd) over STARTTLS and
// over TLS from the first byte, signed in, and checks what the server got.
func TestSend(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		t.Run(map[bool]string{false: "starttls", true: "smtps"}[implicit], func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{Implicit: implicit, User: smtpUser, Password: smtpPass})
			m, err := New(Config{URL: srv.URL(smtpUser), From: from, Password: []byte(smtpPass), RootCAs: srv.CAPool, Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			body := "Hello Zoë,\n\nReset your password: https://dir.example.com/reset?token=abc\n" + strings.Repeat("long line ", 20) + "\n"
			if err := m.Send(t.Context(), Message{To: "alice@example.com", Subject: "Réinitialiser your password", Body: body}); err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages(t)
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			got := msgs[0]
			if got.From != from || len(got.To) != 1 || got.To[0] != "alice@example.com" || !got.TLS || !got.Auth {
				t.Fatalf("envelope %+v", got)
			}
			subj, err := new(mime.WordDecoder).DecodeHeader(got.Msg.Header.Get("Subject"))
			if err != nil || subj != "Réinitialiser your password" {
				t.Fatalf("subject %q (%v)", subj, err)
			}
			if got.Msg.Header.Get("From") != from || got.Msg.Header.Get("To") != "alice@example.com" || got.Msg.Header.Get("Message-ID") == "" {
				t.Fatalf("headers %v", got.Msg.Header)
			}
			if _, err := got.Msg.Header.Date(); err != nil {
				t.Fatalf("date: %v", err)
			}
			text, err := io.ReadAll(quotedprintable.NewReader(got.Msg.Body))
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.ReplaceAll(body, "\n", "\r\n"); strings.TrimRight(string(text), "\r\n") != strings.TrimRight(want, "\r\n") {
				t.Fatalf("body %q, want %q", text, want)
			}
		})
	}
}

// TestRefusals: what must not be sent is not (nothing reaches the server).
func TestRefusals(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{User: smtpUser, Password: smtpPass})
	plain := smtptest.Start(t, smtptest.Options{NoTLS: true})
	msg := Message{To: "alice@example.com", Subject: "s", Body: "b"}
	cases := []struct {
		name string
		cfg  Config
		msg  Message
		want string
	}{
		{"wrong password", Config{URL: srv.URL(smtpUser), Password: []byte("wrong"), RootCAs: srv.CAPool}, msg, "refused the user"},
		{"certificate not trusted", Config{URL: srv.URL(smtpUser), Password: []byte(smtpPass), RootCAs: x509.NewCertPool()}, msg, "certificate"},
		{"no STARTTLS offered", Config{URL: plain.URL("")}, msg, "does not offer STARTTLS"},
		{"header injection in recipient", Config{URL: srv.URL(smtpUser), Password: []byte(smtpPass), RootCAs: srv.CAPool},
			Message{To: "alice@example.com\r\nBcc: eve@example.com", Subject: "s"}, "recipient"},
		{"header injection in subject", Config{URL: srv.URL(smtpUser), Password: []byte(smtpPass), RootCAs: srv.CAPool},
			Message{To: "alice@example.com", Subject: "s\r\nBcc: eve@example.com"}, "line break"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.From, c.cfg.Timeout = from, 20*time.Second
			m, err := New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Send(t.Context(), c.msg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Send: %v, want an error with %q", err, c.want)
			}
			if strings.Contains(err.Error(), smtpPass) {
				t.Fatal("the error quotes the password")
			}
		})
	}
	if n := len(srv.Messages(t)) + len(plain.Messages(t)); n != 0 {
		t.Fatalf("%d messages reached a server", n)
	}
}

// TestConfig: bad settings are refused with the setting named.
func TestConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "http://h", From: from}, "scheme"},
		{Config{URL: "smtp://u:pw@h", From: from}, "must not hold a password"},
		{Config{URL: "smtp://u@h", From: from}, "needs a password"},
		{Config{URL: "smtp://h", From: from, Password: []byte("x")}, "needs a user"},
		{Config{URL: "smtp://h/path", From: from}, "no path"},
		{Config{URL: "smtp://h", From: "Alice <a@example.com>"}, "sender address"},
		{Config{URL: "h:25", From: from}, "SMTP URL"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): %v, want %q", c.cfg, err, c.want)
		}
	}
	m, err := New(Config{URL: "smtp://mail.example.com", From: from})
	if err != nil || m.Server() != "smtp://mail.example.com:587" {
		t.Fatalf("default port: %v %v", m, err)
	}
	m, err = New(Config{URL: "smtps://mail.example.com", From: from})
	if err != nil || m.Server() != "smtps://mail.example.com:465" {
		t.Fatalf("default port: %v %v", m, err)
	}
}
