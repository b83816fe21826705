package directory

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// CloseUnauthorized is the websocket close code for a failed handshake.
const CloseUnauthorized = protocol.CloseUnauthorized

const handshakeTimeout = 10 * time.Second

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// handleAgent upgrades to a websocket and runs the handshake on the HTTP
// goroutine; the connection's reader then starts on a fresh goroutine, so
// an idle connection holds one small stack.
func (s *Server) handleAgent(w http.ResponseWriter, r *http.Request) {
	if !s.track(&s.active) {
		http.Error(w, "directory restarting", http.StatusServiceUnavailable)
		return
	}
	defer s.active.Done()
	s.pending.Add(1)
	defer s.pending.Add(-1)
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	ws.SetReadLimit(protocol.MaxMessageSize)
	addr := remoteAddr(r)
	c, lastSeq, err := s.handshake(ws, addr)
	if err != nil {
		s.log.Info("agent handshake failed", "addr", addr, "err", err)
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseUnauthorized, "unauthorized"),
			time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	// Welcome first, then register and catch up: pushes follow the welcome.
	c.send(mustEnvelope(protocol.TypeWelcome, protocol.Welcome{DeviceID: c.sess.deviceID, Policy: s.Policy(),
		PingSeconds: max(1, int(s.cfg.PingInterval/time.Second)), LockoutThreshold: s.cfg.Lockout.Threshold}))
	s.hub.add(c)
	dev, at := c.sess.deviceID, s.now()
	s.bg.add(func(ctx context.Context, tx store.Tx) error {
		if err := tx.TouchDevice(ctx, dev, at); err != nil {
			return err
		}
		if lastSeq > 0 {
			if err := tx.AckPushes(ctx, dev, lastSeq); err != nil {
				return err
			}
		}
		return tx.Audit(ctx, store.AuditEvent{At: at, Event: "device_authenticated", Actor: "device", Device: dev, Source: addr})
	})
	c.catchUp()
	c.startReading()
	s.log.Debug("agent connected", "device_id", dev, "addr", addr)
}

var errUnauthorized = errors.New("unauthorized")

// handshake sends a fresh challenge and checks the signed answer.
func (s *Server) handshake(ws *websocket.Conn, addr string) (*conn, uint64, error) {
	challenge := make([]byte, 32)
	if _, err := rand.Read(challenge); err != nil {
		return nil, 0, fmt.Errorf("reading challenge: %w", err)
	}
	hello, err := protocol.Encode(mustEnvelope(protocol.TypeHello, protocol.Hello{Challenge: challenge, ServerTime: s.now().UTC()}))
	if err != nil {
		return nil, 0, err
	}
	_ = ws.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		return nil, 0, fmt.Errorf("sending hello: %w", err)
	}
	_ = ws.SetWriteDeadline(time.Time{})
	_ = ws.SetReadDeadline(time.Now().Add(handshakeTimeout))
	_, data, err := ws.ReadMessage()
	if err != nil {
		return nil, 0, fmt.Errorf("reading auth: %w", err)
	}
	env, err := protocol.Decode(data)
	if err != nil {
		return nil, 0, fmt.Errorf("decoding auth: %w", err)
	}
	if env.Type != protocol.TypeAuth {
		return nil, 0, fmt.Errorf("expected auth, got %s", env.Type)
	}
	var auth protocol.Auth
	if err := env.Decode(&auth); err != nil {
		return nil, 0, fmt.Errorf("decoding auth: %w", err)
	}
	var dev store.Device
	err = s.st.View(s.ctx, func(tx store.Tx) error {
		var err error
		dev, err = tx.Device(s.ctx, auth.DeviceID)
		return err
	})
	a := actor{kind: "device", device: auth.DeviceID, addr: addr}
	if errors.Is(err, store.ErrNotFound) {
		s.auditAsync(a, "device_auth_failed", "", map[string]string{"reason": "unknown_device"})
		return nil, 0, fmt.Errorf("unknown device: %w", errUnauthorized)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading device: %w", err)
	}
	if len(dev.PublicKey) != ed25519.PublicKeySize ||
		!ed25519.Verify(ed25519.PublicKey(dev.PublicKey), protocol.AuthMessage(auth.DeviceID, challenge), auth.Signature) {
		s.auditAsync(a, "device_auth_failed", "", map[string]string{"reason": "bad_signature"})
		return nil, 0, fmt.Errorf("bad signature: %w", errUnauthorized)
	}
	// An agent cannot have processed pushes that were never made (say, the
	// database was restored from a backup): catch up from what exists.
	last := min(auth.LastSeq, dev.LastSeq)
	return newConn(s, ws, session{deviceID: dev.ID, addr: addr}, last), last, nil
}

func mustEnvelope(typ string, v any) *protocol.Envelope {
	env, err := protocol.New(typ, v)
	if err != nil {
		panic(err) // only fixed, encodable types reach here
	}
	return env
}

// handleEnroll trades a one-time enrollment token for a device id.
func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	addr := remoteAddr(r)
	a := actor{kind: "device", addr: addr}
	if ok, wait := s.limits.allowKey(&s.limits.address, "enroll:"+addr, s.now()); !ok {
		writeError(w, http.StatusTooManyRequests, &protocol.Error{Code: protocol.CodeRateLimited,
			Message: "Too many enrollment attempts.", RetryAfter: retrySeconds(wait)})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, protocol.MaxMessageSize+1))
	if err != nil || len(body) > protocol.MaxMessageSize {
		writeError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeBadRequest, "request too large"))
		return
	}
	var req protocol.EnrollRequest
	env := &protocol.Envelope{Type: "enroll", Body: body}
	if err := env.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, asProtoError(err))
		return
	}
	defer req.Token.Wipe()
	sum := sha256.Sum256(req.Token)
	id := "dev_" + b32.EncodeToString(randBytes(10))
	var perr *protocol.Error
	err = s.update(r.Context(), func(tx store.Tx, out *outbox) error {
		perr = nil
		t, err := tx.EnrollToken(r.Context(), sum[:])
		switch {
		case errors.Is(err, store.ErrNotFound):
			perr = protocol.Errorf(protocol.CodeUnauthorized, "The enrollment token is not valid.")
		case err != nil:
			return err
		case !t.UsedAt.IsZero():
			perr = protocol.Errorf(protocol.CodeUnauthorized, "The enrollment token was already used.")
		case !out.now.Before(t.ExpiresAt):
			perr = protocol.Errorf(protocol.CodeUnauthorized, "The enrollment token has expired.")
		}
		if perr != nil {
			return a.audit(r.Context(), tx, out.now, "enroll_failed", "", map[string]string{"reason": perr.Message, "hostname": req.Hostname})
		}
		if err := tx.CreateDevice(r.Context(), store.Device{ID: id, Hostname: req.Hostname, PublicKey: req.PublicKey, CreatedAt: out.now}); err != nil {
			return err
		}
		if err := tx.UseEnrollToken(r.Context(), sum[:], id, out.now); err != nil {
			return err
		}
		a.device = id
		return a.audit(r.Context(), tx, out.now, "device_enrolled", "", map[string]string{"hostname": req.Hostname, "note": t.Note})
	})
	if err != nil {
		s.log.Error("enrollment failed", "err", err)
		writeError(w, http.StatusInternalServerError, internalError(err))
		return
	}
	if perr != nil {
		writeError(w, http.StatusUnauthorized, perr)
		return
	}
	s.log.Info("device enrolled", "device_id", id, "hostname", req.Hostname)
	writeJSON(w, http.StatusOK, protocol.EnrollResponse{DeviceID: id})
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

func asProtoError(err error) *protocol.Error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe
	}
	return protocol.Errorf(protocol.CodeBadRequest, "%v", err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, e *protocol.Error) {
	writeJSON(w, status, struct {
		Error *protocol.Error `json:"error"`
	}{e})
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
