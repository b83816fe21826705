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
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lockstep-dev/lockstep/directory/admin"
	"github.com/lockstep-dev/lockstep/protocol"
)

// testAgent is a device talking to a lockstep-directory process over the
// real websocket: requests run concurrently, results are routed by id.
type testAgent struct {
	ws      *websocket.Conn
	wmu     sync.Mutex
	mu      sync.Mutex
	waiting map[string]chan *protocol.Envelope
	n       atomic.Int64
	done    chan struct{}
}

// directoryTLS is the TLS configuration that trusts the server in dir.
func directoryTLS(tb testing.TB, dir string) (admin.Info, *tls.Config) {
	tb.Helper()
	info, err := admin.ReadInfo(dir)
	if err != nil {
		tb.Fatal(err)
	}
	pem, err := os.ReadFile(info.CAFile)
	if err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return info, &tls.Config{RootCAs: roots}
}

// enrollAgent enrolls a new device with a token binding users and
// connects it.
func enrollAgent(tb testing.TB, dir string, users ...string) *testAgent {
	tb.Helper()
	info, tc := directoryTLS(tb, dir)
	cl, err := admin.FromDataDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := cl.CreateEnrollToken(tb.Context(), admin.EnrollTokenRequest{Users: users})
	if err != nil {
		tb.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	body, _ := json.Marshal(protocol.EnrollRequest{Token: tok.Token, PublicKey: pub, Hostname: "mac"})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := hc.Post(info.URL+protocol.EnrollPath, "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	var er protocol.EnrollResponse
	_ = json.NewDecoder(resp.Body).Decode(&er)
	resp.Body.Close()
	hc.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("enroll: HTTP %d", resp.StatusCode)
	}
	d := websocket.Dialer{TLSClientConfig: tc, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial("wss"+strings.TrimPrefix(info.URL, "https")+protocol.AgentPath, nil)
	if err != nil {
		tb.Fatal(err)
	}
	_, data, err := ws.ReadMessage()
	if err != nil {
		tb.Fatal(err)
	}
	env, err := protocol.Decode(data)
	if err != nil {
		tb.Fatal(err)
	}
	var h protocol.Hello
	_ = env.Decode(&h)
	auth, _ := protocol.New(protocol.TypeAuth, protocol.Auth{DeviceID: er.DeviceID, Signature: ed25519.Sign(priv, protocol.AuthMessage(er.DeviceID, h.Challenge))})
	msg, _ := protocol.Encode(auth)
	if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); err != nil { // welcome
		tb.Fatal(err)
	}
	a := &testAgent{ws: ws, waiting: map[string]chan *protocol.Envelope{}, done: make(chan struct{})}
	go a.read()
	tb.Cleanup(func() { ws.Close() })
	return a
}

func (a *testAgent) read() {
	defer close(a.done)
	for {
		_, data, err := a.ws.ReadMessage()
		if err != nil {
			return
		}
		env, err := protocol.Decode(data)
		if err != nil || env.Type != protocol.TypeResult {
			continue // pushes are not acknowledged here
		}
		a.mu.Lock()
		ch := a.waiting[env.ID]
		delete(a.waiting, env.ID)
		a.mu.Unlock()
		if ch != nil {
			ch <- env
		}
	}
}

// call sends a request and waits for its result.
func (a *testAgent) call(typ, key string, body any) (*protocol.Envelope, error) {
	env, err := protocol.New(typ, body)
	if err != nil {
		return nil, err
	}
	env.ID = fmt.Sprintf("r%d", a.n.Add(1))
	env.IdempotencyKey = key
	ch := make(chan *protocol.Envelope, 1)
	a.mu.Lock()
	a.waiting[env.ID] = ch
	a.mu.Unlock()
	b, err := protocol.Encode(env)
	if err != nil {
		return nil, err
	}
	a.wmu.Lock()
	err = a.ws.WriteMessage(websocket.TextMessage, b)
	a.wmu.Unlock()
	clear(b)
	if err != nil {
		return nil, err
	}
	select {
	case res := <-ch:
		return res, nil
	case <-a.done:
		return nil, fmt.Errorf("connection closed waiting for %s", typ)
	case <-time.After(2 * time.Minute):
		return nil, fmt.Errorf("no result for %s", typ)
	}
}
