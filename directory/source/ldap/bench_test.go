package ldap

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	ldapv3 "github.com/go-ldap/ldap/v3"

	"github.com/lockstep-dev/lockstep/directory/source"
	"github.com/lockstep-dev/lockstep/internal/tools/slapdtest"
)

// BenchmarkWatchIdle measures the LDAP load of watching 1,000 users while
// nothing changes: the start-up (the syncrepl refresh of every user) and
// the searches, binds and connections of an idle minute after it
// (LOCKSTEP_IDLE sets another length). Run it with
//
//	go test ./directory/source/ldap -run '^$' -bench WatchIdle -benchtime 1x
func BenchmarkWatchIdle(b *testing.B) {
	srv := slapdtest.Need(b)
	ou := srv.NewOU(b)
	svc := srv.ServiceAccount(b, ou, true)
	root := srv.Root(b)
	const users = 1000
	for i := range users {
		a := ldapv3.NewAddRequest(fmt.Sprintf("uid=idle%04d,%s", i, ou), nil)
		a.Attribute("objectClass", []string{"inetOrgPerson"})
		a.Attribute("uid", []string{fmt.Sprintf("idle%04d", i)})
		a.Attribute("cn", []string{"Idle"})
		a.Attribute("sn", []string{"Idle"})
		a.Attribute("userPassword", []string{fmt.Sprintf("Idle-Pass-%04d!", i)})
		if err := root.Add(a); err != nil {
			b.Fatal(err)
		}
	}
	idle := time.Minute
	if d, err := time.ParseDuration(os.Getenv("LOCKSTEP_IDLE")); err == nil {
		idle = d
	}
	for i := 0; i < b.N; i++ {
		s, err := New(context.Background(), Config{URL: srv.URL, CAFile: srv.CAFile, BaseDN: ou, BindDN: svc.DN,
			BindPassword: []byte(svc.Password), PolicyDN: slapdtest.PolicyDN})
		if err != nil {
			b.Fatal(err)
		}
		var events atomic.Int64
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		t0 := time.Now()
		go func() {
			done <- s.Watch(ctx, nil, func(e source.Event) {
				if e.User != "" {
					events.Add(1)
				}
			})
		}()
		for !s.Stats().Syncing || events.Load() < users {
			time.Sleep(10 * time.Millisecond)
		}
		up := s.Stats()
		b.Logf("start-up: %v to refresh %d users (%d events): %d searches, %d binds, %d connections",
			time.Since(t0).Round(time.Millisecond), users, events.Load(), up.Searches, up.Binds, up.Dials)
		time.Sleep(idle)
		after := s.Stats()
		per := func(n int64) float64 { return float64(n) / idle.Minutes() }
		b.Logf("idle %v: %.1f searches/min, %.1f binds/min, %.1f connections/min, syncing %v, polling %v",
			idle, per(after.Searches-up.Searches), per(after.Binds-up.Binds), per(after.Dials-up.Dials), after.Syncing, after.Polling)
		b.ReportMetric(per(after.Searches-up.Searches), "idle-searches/min")
		stop()
		<-done
		s.Close()
	}
}
