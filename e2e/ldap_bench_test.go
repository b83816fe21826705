package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/internal/tools/slapdtest"
	"github.com/lockstep-dev/lockstep/localapi"
)

// BenchmarkLDAPResetPush measures, with the real binaries and slapd, the
// time from an administrator's reset committed in LDAP to the push
// reaching the agent (lockstepd's notice on its watch stream), over 60
// resets of each kind: an LDAP modify of userPassword (what any LDAP tool
// sends), from the modify's answer, and the real ldapmodify, from its
// start. Run it with
//
//	go test ./e2e -run '^$' -bench LDAPResetPush -benchtime 1x
func BenchmarkLDAPResetPush(b *testing.B) {
	d := sharedLDAP(b)
	u, lu := d.ldapUser(b)
	m := newMacFrom(b, d.dirProc, u, macSpec(u.password), []string{u.name})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notices := make(chan time.Time, 16)
	ready := make(chan struct{})
	go m.client.Watch(ctx, func(ev localapi.Event) error {
		select {
		case <-ready:
		default:
			close(ready)
		}
		if ev.Type == localapi.EventNotice && ev.Notice != nil && ev.Notice.Kind == localapi.NoticeReset {
			notices <- time.Now()
		}
		return nil
	})
	<-ready
	kinds := []struct {
		name    string
		n       int
		reset   func(pw string)
		fromEnd bool
	}{
		{"ldap-modify", 60, func(pw string) { d.srv.SetPassword(b, lu.DN, pw, false) }, true},
		{"ldapmodify-tool", 60, func(pw string) { d.srv.LDAPModify(b, slapdtest.ResetLDIF(lu.DN, pw, false)) }, false},
	}
	for i := 0; i < b.N; i++ {
		for _, k := range kinds {
			var lat []time.Duration
			for range k.n {
				select {
				case <-notices: // drop a straggler
				default:
				}
				start := time.Now()
				k.reset(newPassword())
				from := start
				if k.fromEnd {
					from = time.Now()
				}
				select {
				case at := <-notices:
					lat = append(lat, max(0, at.Sub(from)))
				case <-time.After(20 * time.Second):
					b.Fatalf("%s: a reset did not reach the agent", k.name)
				}
			}
			slices.Sort(lat)
			p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
			what := "the reset committed"
			if !k.fromEnd {
				what = "the tool started"
			}
			b.Logf("%s: %d resets, %s -> push at the agent: p50 %v p99 %v max %v", k.name, len(lat), what,
				p(0.50).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
			b.ReportMetric(float64(p(0.99).Microseconds())/1000, k.name+"-p99-ms")
			b.ReportMetric(float64(p(0.50).Microseconds())/1000, k.name+"-p50-ms")
		}
	}
}
