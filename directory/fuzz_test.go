package directory

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/directory/store"
	"github.com/lockstep-dev/lockstep/protocol"
)

// FuzzDispatch feeds arbitrary frames to the handler of an authenticated
// connection, against a real database. Every input must yield nil or a
// result frame that encodes within the size limit and echoes the request
// id when the frame had a valid one; nothing may panic.
func FuzzDispatch(f *testing.F) {
	seeds := []string{
		`{"v":1,"type":"get_policy","id":"1"}`,
		`{"v":1,"type":"get_account","id":"2","body":{"user":"alice","local_name":"al"}}`,
		`{"v":1,"type":"verify_password","id":"3","body":{"user":"alice","password":"SW5pdGlhbC1TZWNyZXQtOTF4"}}`,
		`{"v":1,"type":"change_password","id":"4","idempotency_key":"k","body":{"user":"alice","current":"SW5pdGlhbC1TZWNyZXQtOTF4","new":"TmV3LVNlY3JldC05Mnk=","totp":"123456"}}`,
		`{"v":1,"type":"ack_sync","id":"5","idempotency_key":"k2","body":{"user":"alice","password_version":1}}`,
		`{"v":1,"type":"ack_push","body":{"seq":3}}`,
		`{"v":1,"type":"ack_push","id":"6","body":{"seq":0}}`,
		`{"v":1,"type":"password_reset","seq":1,"body":{}}`,
		`{"v":1,"type":"auth","id":"7","body":{}}`,
		`{"v":1,"type":"get_policy","id":"8"} {}`,
		`{"v":1,`,
		`[]`,
		`{"v":1,"type":"verify_password","id":"9","body":{"user":"\u0000","password":""}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	srv, err := New(Config{DataDir: dir, Log: slog.New(slog.DiscardHandler), Argon2: testArgon2,
		AccountRate: Rate{Every: time.Millisecond, Burst: 1 << 20}, AddressRate: Rate{Every: time.Millisecond, Burst: 1 << 20},
		Lockout: Lockout{Threshold: 1 << 30}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Shutdown(f.Context()) })
	hash, err := srv.hash.Hash(f.Context(), []byte(alicePW))
	if err != nil {
		f.Fatal(err)
	}
	err = srv.st.Update(f.Context(), func(tx store.Tx) error {
		now := time.Now()
		if err := tx.CreateUser(f.Context(), store.User{Name: "alice", PasswordHash: hash, PasswordVersion: 1,
			PasswordChangedAt: now, CreatedAt: now}); err != nil {
			return err
		}
		if err := tx.CreateDevice(f.Context(), store.Device{ID: "dev_fuzz", Hostname: "fuzz", PublicKey: make([]byte, 32), CreatedAt: now}); err != nil {
			return err
		}
		return tx.Bind(f.Context(), store.Binding{DeviceID: "dev_fuzz", User: "alice", LocalName: "alice", BoundAt: now})
	})
	if err != nil {
		f.Fatal(err)
	}
	sess := session{deviceID: "dev_fuzz", addr: "192.0.2.1"}

	f.Fuzz(func(t *testing.T, data []byte) {
		res := srv.dispatch(t.Context(), sess, data)
		decoded, derr := protocol.Decode(data)
		if res == nil {
			if derr != nil || decoded.Type != protocol.TypeAckPush || decoded.ID != "" {
				t.Fatalf("no reply to %q", data)
			}
			return
		}
		if res.Type != protocol.TypeResult {
			t.Fatalf("reply type %q", res.Type)
		}
		b, err := json.Marshal(res)
		if err != nil || len(b) > protocol.MaxMessageSize {
			t.Fatalf("reply does not encode: %v (%d bytes)", err, len(b))
		}
		if derr == nil {
			if res.ID != decoded.ID {
				t.Fatalf("reply id %q, request id %q", res.ID, decoded.ID)
			}
			if decoded.ID == "" {
				return // unanswerable: the connection closes with 1007
			}
			if _, err := protocol.Decode(b); err != nil {
				t.Fatalf("reply is not a valid frame: %v: %s", err, b)
			}
		} else if res.Error == nil {
			t.Fatalf("undecodable frame %q answered without an error", data)
		}
	})
}
