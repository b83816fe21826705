package ad

import (
	"context"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/source/sourcetest"
	"github.com/lockstep-dev/lockstep/internal/tools/sambatest"
)

func TestMain(m *testing.M) { sambatest.Main(m) }

// env is a DC with an OU of the test's own and a service account in it.
type env struct {
	dc  *sambatest.DC
	ou  string
	svc sambatest.User
}

func newEnv(t *testing.T, rights ...string) env {
	t.Helper()
	dc := sambatest.Need(t)
	ou := dc.NewOU(t)
	return env{dc: dc, ou: ou, svc: dc.ServiceAccount(t, ou, rights...)}
}

func (e env) config() Config {
	return Config{URL: sambatest.URL, CAFile: e.dc.CAFile, BaseDN: e.ou, BindDN: e.svc.DN, BindPassword: []byte(e.svc.Password),
		Timeout: 10 * time.Second}
}

func (e env) source(t *testing.T, mod func(*Config)) *Source {
	t.Helper()
	cfg := e.config()
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The conformance suite, against a real Samba AD DC, with a service
// account holding the rights of the README's "read, reset and unlock".
func TestConformance(t *testing.T) {
	e := newEnv(t, sambatest.RightReset, sambatest.RightPwdLastSet, sambatest.RightLockoutTime)
	s := e.source(t, nil)
	sourcetest.Run(t, sourcetest.Fixture{
		Source: s,
		NewUser: func(t *testing.T, password string) string {
			return e.dc.AddUser(t, e.ou, "u", password).Name
		},
		Elsewhere: func(t *testing.T, user, password string, temporary bool) {
			e.dc.SetPassword(t, "CN="+user+","+e.ou, password, temporary)
		},
		LockoutThreshold: 5,
	})
}
