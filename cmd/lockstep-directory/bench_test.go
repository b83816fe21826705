package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

// fleet is n enrolled agents connected to a lockstep-directory process.
type fleet struct {
	b     *testing.B
	cl    *admin.Client
	info  admin.Info
	tc    *tls.Config
	devs  []benchDev
	conns []*websocket.Conn
	// pushes receives, per device, the arrival time of each push.
	pushes []chan time.Time
	wmu    []sync.Mutex
}

type benchDev struct {
	id  string
	key ed25519.PrivateKey
}

func newFleet(b *testing.B, dir string, n int) *fleet {
	cl, err := admin.FromDataDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	info, _ := admin.ReadInfo(dir)
	pem, _ := os.ReadFile(info.CAFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	f := &fleet{b: b, cl: cl, info: info, tc: &tls.Config{RootCAs: roots}, devs: make([]benchDev, n),
		conns: make([]*websocket.Conn, n), pushes: make([]chan time.Time, n), wmu: make([]sync.Mutex, n)}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: f.tc}}
	f.parallel(func(i int) {
		tok, err := cl.CreateEnrollToken(b.Context(), admin.EnrollTokenRequest{})
		if err != nil {
			b.Error(err)
			return
		}
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		body, _ := json.Marshal(protocol.EnrollRequest{Token: tok.Token, PublicKey: pub, Hostname: fmt.Sprintf("mac-%d", i)})
		resp, err := hc.Post(info.URL+protocol.EnrollPath, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Error(err)
			return
		}
		var er protocol.EnrollResponse
		_ = json.NewDecoder(resp.Body).Decode(&er)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("enroll: HTTP %d", resp.StatusCode)
			return
		}
		f.devs[i] = benchDev{id: er.DeviceID, key: priv}
		f.pushes[i] = make(chan time.Time, 16)
	})
	return f
}

func (f *fleet) parallel(fn func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range f.devs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// connect dials and authenticates device i; its reader records pushes.
func (f *fleet) connect(i int) error {
	d := websocket.Dialer{TLSClientConfig: f.tc, ReadBufferSize: 512, WriteBufferSize: 512, HandshakeTimeout: 30 * time.Second}
	ws, _, err := d.Dial("wss"+strings.TrimPrefix(f.info.URL, "https")+protocol.AgentPath, nil)
	if err != nil {
		return err
	}
	_, data, err := ws.ReadMessage()
	if err != nil {
		return err
	}
	env, err := protocol.Decode(data)
	if err != nil {
		return err
	}
	var h protocol.Hello
	_ = env.Decode(&h)
	a, _ := protocol.New(protocol.TypeAuth, protocol.Auth{DeviceID: f.devs[i].id,
		Signature: ed25519.Sign(f.devs[i].key, protocol.AuthMessage(f.devs[i].id, h.Challenge))})
	msg, _ := protocol.Encode(a)
	if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		return err
	}
	if _, _, err := ws.ReadMessage(); err != nil { // welcome
		return err
	}
	f.conns[i] = ws
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			at := time.Now()
			if env, err := protocol.Decode(data); err == nil && protocol.IsPush(env.Type) {
				f.pushes[i] <- at
				ack, _ := protocol.New(protocol.TypeAckPush, protocol.AckPush{Seq: env.Seq})
				b, _ := protocol.Encode(ack)
				f.wmu[i].Lock()
				_ = ws.WriteMessage(websocket.TextMessage, b)
				f.wmu[i].Unlock()
			}
		}
	}()
	return nil
}

func (f *fleet) close() {
	for i, c := range f.conns {
		if c != nil {
			c.Close()
			f.conns[i] = nil
		}
	}
}

// BenchmarkIdleConnectionMemory connects idle agents to the real binary
// (with its own TLS) and reports the server's live heap plus stacks per
// connection, read through the admin API after a collection (target:
// <= 20 KiB), then, while all are connected, the time from an admin
// reset request to the push's arrival at the bound agent (target: p99 <=
// 100 ms; hashing is cheap here, see startB) and from the admin response
// to the push (usually 0: the push is written first). Run with:
//
//	go test ./cmd/lockstep-directory -run '^$' -bench . -benchtime 1x
func BenchmarkIdleConnectionMemory(b *testing.B) {
	n, resets := 2000, 200
	if v, err := strconv.Atoi(os.Getenv("LOCKSTEP_BENCH_AGENTS")); err == nil && v >= resets {
		n = v
	}
	dir := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := startB(b, dir, addr)
	defer func() { _ = s.Process.Kill() }()
	f := newFleet(b, dir, n)
	defer func() { f.close() }()
	before, err := f.cl.Stats(b.Context(), true)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	f.parallel(func(i int) {
		if err := f.connect(i); err != nil {
			b.Error(err)
		}
	})
	connectTime := time.Since(start)
	time.Sleep(time.Second)
	after, err := f.cl.Stats(b.Context(), true)
	if err != nil {
		b.Fatal(err)
	}
	if after.Connections != n {
		b.Fatalf("%d connections, want %d", after.Connections, n)
	}
	b.ReportMetric(float64((after.HeapBytes+after.StackBytes)-(before.HeapBytes+before.StackBytes))/float64(n), "B/conn")
	b.ReportMetric(float64(after.Goroutines-before.Goroutines)/float64(n), "goroutines/conn")
	b.ReportMetric(connectTime.Seconds(), "s-to-connect")

	// Reset latency while all are connected: one user per device for the
	// first `resets` devices, assigned by the administrator.
	for i := range resets {
		name := fmt.Sprintf("user%d", i)
		if _, err := f.cl.AddUser(b.Context(), admin.AddUserRequest{Name: name, Password: protocol.Secret("Bench-Pass-1234")}); err != nil {
			b.Fatal(err)
		}
		if _, err := f.cl.AssignDevice(b.Context(), f.devs[i].id, name); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	var lat, full []time.Duration
	for i := range resets {
		began := time.Now()
		_, err := f.cl.ResetPassword(b.Context(), fmt.Sprintf("user%d", i), admin.ResetRequest{Temporary: true})
		done := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-f.pushes[i]:
			lat = append(lat, max(0, at.Sub(done)))
			full = append(full, at.Sub(began))
		case <-time.After(10 * time.Second):
			b.Fatalf("no push for user%d", i)
		}
	}

	// Restart: SIGTERM, start again, every agent redials at once (16 in
	// flight at a time, retrying until the server is back).
	if err := s.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	_ = s.Wait()
	f.close()
	restart := time.Now()
	s = startB(b, dir, addr)
	f.parallel(func(i int) {
		for {
			if err := f.connect(i); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	reconnect := time.Since(restart)
	if st, err := f.cl.Stats(b.Context(), false); err != nil || st.Connections != n {
		b.Fatalf("after restart: %+v %v", st, err)
	}
	b.ReportMetric(reconnect.Seconds(), "s-to-reconnect-all")
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(full)
	b.ReportMetric(float64(full[len(full)*99/100].Microseconds())/1000, "ms-request-to-push-p99")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms-reset-p99")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-reset-p50")
}
