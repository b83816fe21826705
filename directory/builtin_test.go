package directory

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/lockstep-dev/lockstep/directory/source/sourcetest"
)

// The source conformance suite against the built-in store (SQLite, or
// PostgreSQL with LOCKSTEP_TEST_STORE=postgres): the same tests Active
// Directory passes in package ad.
func TestBuiltinSourceConformance(t *testing.T) {
	e := newEnv(t)
	var n atomic.Int64
	sourcetest.Run(t, sourcetest.Fixture{
		Source: e.srv.src,
		NewUser: func(t *testing.T, password string) string {
			name := fmt.Sprintf("conf%d", n.Add(1))
			e.addUser(name, password, false)
			return name
		},
		LockoutThreshold: e.srv.cfg.Lockout.Threshold,
	})
}
