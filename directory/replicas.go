package directory

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// changeFeed is a store shared with other replicas (PostgreSQL): Listen
// reports, until ctx ends, what the others commit, and a Resync whenever
// it may have missed something.
//
// A replica delivers the pushes it commits itself after the commit, as
// with SQLite (hub.deliver). The pushes another replica commits reach
// this one's connected devices through the feed: the devices named in a
// change catch up from their outbox (seq > last sent), which is the same
// path a reconnecting device takes, so order holds and nothing is sent
// twice however notifications and live pushes interleave.
//
// A device has one connection per replica at most ("newer replaces
// older"). A device that reconnects to replica B while its old socket
// lingers on A (until A's keepalive drops it, 2.5 ping intervals at
// most) has a connection on both; each gets every push once, in order,
// and the agent reads only its new socket, so it sees no duplicate (it
// also ignores any seq at or below the last it handled).
type changeFeed interface {
	Listen(ctx context.Context, fn func(store.Change))
}

// catchUpWorkers bounds the outbox reads one change starts at once.
const catchUpWorkers = 8

// applyChange acts on what another replica committed.
func (s *Server) applyChange(ch store.Change) {
	for _, id := range ch.Revoked {
		if s.hub.closeDevice(id, protocol.CloseRevoked, "device revoked") {
			s.log.Info("revoked device disconnected", "device_id", id)
		}
	}
	if ch.Resync {
		s.closeRevoked()
	}
	if ch.Policy || ch.Resync {
		if err := s.reloadPolicy(s.ctx); err != nil {
			s.log.Error("policy not reloaded", "err", err)
		}
	}
	var cs []*conn
	if ch.Resync || ch.AllDevices {
		cs = s.hub.all()
	} else {
		for _, id := range ch.Devices {
			if c := s.hub.get(id); c != nil {
				cs = append(cs, c)
			}
		}
	}
	s.log.Debug("replica change applied", "devices", len(ch.Devices), "all", ch.AllDevices, "policy", ch.Policy,
		"revoked", len(ch.Revoked), "resync", ch.Resync, "local", len(cs))
	catchUpAll(cs)
}

// closeRevoked closes the connections of devices revoked while this
// replica may not have heard of it.
func (s *Server) closeRevoked() {
	var ids []string
	err := s.st.View(s.ctx, func(tx store.Tx) error {
		var err error
		ids, err = tx.RevokedDevices(s.ctx)
		return err
	})
	if err != nil {
		s.log.Error("revoked devices not read", "err", err)
		return
	}
	for _, id := range ids {
		if s.hub.closeDevice(id, protocol.CloseRevoked, "device revoked") {
			s.log.Info("revoked device disconnected", "device_id", id)
		}
	}
}

// catchUpAll has each connection send what its outbox holds beyond what
// it sent, a few at a time.
func catchUpAll(cs []*conn) {
	if len(cs) == 1 {
		cs[0].catchUp()
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(catchUpWorkers, len(cs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(cs)) {
					return
				}
				cs[i].catchUp()
			}
		}()
	}
	wg.Wait()
}
