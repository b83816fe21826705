package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

// BenchmarkIdleConnectionMemory connects idle agents to the real binary
// (with its own TLS) and reports the server's live heap plus stacks per
// connection, read through the admin API after a collection. The design
// target is <= 20 KiB. Run with:
//
//	go test ./cmd/lockstep-directory -run '^$' -bench IdleConnectionMemory -benchtime 1x
func BenchmarkIdleConnectionMemory(b *testing.B) {
	const n = 2000
	dir := b.TempDir()
	s := startB(b, dir)
	defer s.Process.Kill()
	cl, err := admin.FromDataDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	info, _ := admin.ReadInfo(dir)
	pem, _ := os.ReadFile(info.CAFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: roots}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}

	type dev struct {
		id  string
		key ed25519.PrivateKey
	}
	devs := make([]dev, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range devs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
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
			devs[i] = dev{id: er.DeviceID, key: priv}
		}()
	}
	wg.Wait()
	before, err := cl.Stats(b.Context(), true)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	d := websocket.Dialer{TLSClientConfig: tc, ReadBufferSize: 512, WriteBufferSize: 512, HandshakeTimeout: 30 * time.Second}
	wsURL := "wss" + strings.TrimPrefix(info.URL, "https") + protocol.AgentPath
	conns := make([]*websocket.Conn, n)
	start := time.Now()
	for i := range devs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ws, _, err := d.Dial(wsURL, nil)
			if err != nil {
				b.Error(err)
				return
			}
			_, data, _ := ws.ReadMessage()
			env, _ := protocol.Decode(data)
			var h protocol.Hello
			_ = env.Decode(&h)
			a, _ := protocol.New(protocol.TypeAuth, protocol.Auth{DeviceID: devs[i].id,
				Signature: ed25519.Sign(devs[i].key, protocol.AuthMessage(devs[i].id, h.Challenge))})
			msg, _ := protocol.Encode(a)
			_ = ws.WriteMessage(websocket.TextMessage, msg)
			if _, _, err := ws.ReadMessage(); err != nil { // welcome
				b.Error(err)
				return
			}
			conns[i] = ws
			go func() { // answer pings; stay idle
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						return
					}
				}
			}()
		}()
	}
	wg.Wait()
	connectTime := time.Since(start)
	time.Sleep(time.Second)
	after, err := cl.Stats(b.Context(), true)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if after.Connections != n {
		b.Fatalf("%d connections, want %d", after.Connections, n)
	}
	perConn := float64((after.HeapBytes+after.StackBytes)-(before.HeapBytes+before.StackBytes)) / n
	b.ReportMetric(perConn, "B/conn")
	b.ReportMetric(float64(after.Goroutines-before.Goroutines)/n, "goroutines/conn")
	b.ReportMetric(connectTime.Seconds(), "s-to-connect")
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}
