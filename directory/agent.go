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
	"strings"
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
	addr := remoteAddr(r)
	// An address whose handshakes keep failing waits before it may try
	// again, before any work is done for it.
	if empty, wait := s.limits.empty(&s.limits.address, "handshake:"+addr, s.now()); empty {
		s.warnEvery("handshake:"+addr, "agent handshakes refused: too many failures from one address", "addr", addr)
		w.Header().Set("Retry-After", fmt.Sprint(retrySeconds(wait)))
		http.Error(w, "too many failed handshakes", http.StatusTooManyRequests)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	ws.SetReadLimit(protocol.MaxMessageSize)
	c, lastSeq, err := s.handshake(ws, addr)
	if err != nil {
		s.limits.allowKey(&s.limits.address, "handshake:"+addr, s.now())
		s.log.Debug("agent handshake failed", "addr", addr, "err", err)
		code, reason := CloseUnauthorized, "unauthorized"
		if errors.Is(err, errRevoked) {
			code, reason = protocol.CloseRevoked, "device revoked"
		}
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	// Welcome first, then register and catch up: pushes follow the welcome.
	c.send(mustEnvelope(protocol.TypeWelcome, protocol.Welcome{DeviceID: c.sess.deviceID, Policy: s.devicePolicy(s.ctx, c.sess.deviceID),
		PingSeconds: max(1, int(s.cfg.PingInterval/time.Second)), LockoutThreshold: s.welcomeThreshold()}))
	s.hub.add(c)
	dev, at := c.sess.deviceID, s.now()
	s.bg.add(func(ctx context.Context, tx store.Tx) error {
		if err := tx.TouchDevice(ctx, dev, at, addr); err != nil {
			return err
		}
		if lastSeq > 0 {
			return tx.AckPushes(ctx, dev, lastSeq)
		}
		return nil
	})
	s.noise(actor{kind: "device", device: dev, addr: addr}, "device_authenticated", "", nil)
	c.catchUp()
	c.startReading()
	s.log.Debug("agent connected", "device_id", dev, "addr", addr)
}

var (
	errUnauthorized = errors.New("unauthorized")
	errRevoked      = errors.New("device revoked")
)

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
	// Failures are noise: an address, not a device, is behind them.
	a := actor{kind: "device", addr: addr}
	if errors.Is(err, store.ErrNotFound) {
		s.noise(a, "device_auth_failed", "", map[string]string{"reason": "unknown_device", "device_id": auth.DeviceID})
		return nil, 0, fmt.Errorf("unknown device: %w", errUnauthorized)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading device: %w", err)
	}
	if len(dev.PublicKey) != ed25519.PublicKeySize ||
		!ed25519.Verify(ed25519.PublicKey(dev.PublicKey), protocol.AuthMessage(auth.DeviceID, challenge), auth.Signature) {
		s.noise(a, "device_auth_failed", "", map[string]string{"reason": "bad_signature", "device_id": auth.DeviceID})
		return nil, 0, fmt.Errorf("bad signature: %w", errUnauthorized)
	}
	// Only the key's holder learns that the device was revoked.
	if !dev.RevokedAt.IsZero() {
		s.noise(a, "device_auth_failed", "", map[string]string{"reason": "revoked", "device_id": auth.DeviceID})
		return nil, 0, errRevoked
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
		s.warnEvery("enroll:"+addr, "enrollments refused: too many from one address", "addr", addr)
		writeError(w, http.StatusTooManyRequests, &protocol.Error{Code: protocol.CodeRateLimited,
			Message: "Too many enrollment attempts.", RetryAfter: retrySeconds(wait)})
		return
	}
	// New devices are the first noise refused when the disk fills up.
	if s.lowDisk() {
		s.warnEvery("enroll:disk", "enrollment refused: the disk is nearly full", "addr", addr)
		writeError(w, http.StatusServiceUnavailable, &protocol.Error{Code: protocol.CodeInternal,
			Message: "The directory cannot enroll devices now; try again later.", RetryAfter: 60})
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
			return nil
		}
		if err := tx.CreateDevice(r.Context(), store.Device{ID: id, Hostname: req.Hostname, PublicKey: req.PublicKey, CreatedAt: out.now,
			Note: t.Note}); err != nil {
			return err
		}
		if err := tx.UseEnrollToken(r.Context(), sum[:], id, out.now); err != nil {
			return err
		}
		a.device = id
		var bound []string
		for _, user := range t.Users {
			if _, err := tx.User(r.Context(), user); errors.Is(err, store.ErrNotFound) {
				continue // deleted since the token was made
			} else if err != nil {
				return err
			}
			if err := tx.Bind(r.Context(), store.Binding{DeviceID: id, User: user, LocalName: user, BoundAt: out.now,
				BoundBy: store.BoundByEnrollment}); err != nil {
				return err
			}
			bound = append(bound, user)
		}
		return a.audit(r.Context(), tx, out.now, "device_enrolled", "", map[string]string{"hostname": req.Hostname, "note": t.Note,
			"users": strings.Join(bound, ",")})
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, s.internalError("enrollment failed", err, "addr", addr))
		return
	}
	if perr != nil {
		s.noise(a, "enroll_failed", "", map[string]string{"reason": perr.Message, "hostname": req.Hostname})
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
