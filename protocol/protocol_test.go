package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code string // "" means valid
	}{
		{"request", `{"v":1,"type":"get_policy","id":"1"}`, ""},
		{"mutating with key", `{"v":1,"type":"change_password","id":"1","idempotency_key":"k"}`, ""},
		{"push", `{"v":1,"type":"password_reset","seq":3,"body":{}}`, ""},
		{"bad json", `{"v":1,`, CodeBadRequest},
		{"not an object", `[1,2]`, CodeBadRequest},
		{"trailing", `{"v":1,"type":"get_policy","id":"1"} {}`, CodeBadRequest},
		{"old version", `{"v":0,"type":"get_policy","id":"1"}`, CodeUnsupported},
		{"future version", `{"v":2,"type":"get_policy","id":"1"}`, CodeUnsupported},
		{"unknown type", `{"v":1,"type":"format_disk","id":"1"}`, CodeUnsupported},
		{"request without id", `{"v":1,"type":"get_policy"}`, CodeBadRequest},
		{"mutating without key", `{"v":1,"type":"change_password","id":"1"}`, CodeBadRequest},
		{"push without seq", `{"v":1,"type":"password_reset"}`, CodeBadRequest},
		{"long id", `{"v":1,"type":"get_policy","id":"` + strings.Repeat("x", MaxIDLen+1) + `"}`, CodeBadRequest},
		{"oversized", `{"v":1,"type":"get_policy","id":"1","body":"` + strings.Repeat("x", MaxMessageSize) + `"}`, CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Decode([]byte(tt.in))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if env.V != Version {
					t.Fatalf("V = %d", env.V)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != tt.code {
				t.Fatalf("Decode error = %v, want code %s", err, tt.code)
			}
		})
	}
}

func TestBodyValidation(t *testing.T) {
	tests := []struct {
		name string
		body string
		v    any
		ok   bool
	}{
		{"change ok", `{"user":"alice","current":"b2xk","new":"bmV3"}`, &ChangePasswordRequest{}, true},
		{"change no user", `{"current":"b2xk","new":"bmV3"}`, &ChangePasswordRequest{}, false},
		{"change no new", `{"user":"alice","current":"b2xk"}`, &ChangePasswordRequest{}, false},
		{"change control char in user", `{"user":"al\nice","current":"b2xk","new":"bmV3"}`, &ChangePasswordRequest{}, false},
		// Terminal escapes: C1 CSI, ESC, NEL, a bidi override, a line separator.
		{"auth C1 CSI in device id", `{"device_id":"dev_\u009b31m","signature":"` + strings.Repeat("A", 86) + `=="}`, &Auth{}, false},
		{"auth ESC in device id", `{"device_id":"dev_\u001b[2J","signature":"` + strings.Repeat("A", 86) + `=="}`, &Auth{}, false},
		{"auth ok", `{"device_id":"dev_ABC","signature":"` + strings.Repeat("A", 86) + `=="}`, &Auth{}, true},
		{"verify NEL in user", `{"user":"al\u0085ice","password":"b2xk"}`, &VerifyPasswordRequest{}, false},
		{"enroll bidi override in hostname", `{"token":"dA==","public_key":"` + strings.Repeat("A", 43) + `=","hostname":"mac\u202e"}`, &EnrollRequest{}, false},
		{"get_account line separator in local name", `{"user":"alice","local_name":"a\u2028b"}`, &GetAccountRequest{}, false},
		{"get_account non-ASCII letters", `{"user":"zoë","local_name":"日本"}`, &GetAccountRequest{}, true},
		{"change long totp", `{"user":"a","current":"b2xk","new":"bmV3","totp":"12345678901234567"}`, &ChangePasswordRequest{}, false},
		{"auth short sig", `{"device_id":"d","signature":"AAAA"}`, &Auth{}, false},
		{"enroll short key", `{"token":"dA==","public_key":"AAAA","hostname":"mac"}`, &EnrollRequest{}, false},
		{"ack sync zero", `{"user":"a","password_version":0}`, &AckSyncRequest{}, false},
		{"wrong field type", `{"user":42}`, &GetAccountRequest{}, false},
		{"unknown field ignored", `{"user":"alice","future":true}`, &GetAccountRequest{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := &Envelope{V: Version, Type: "x", Body: json.RawMessage(tt.body)}
			err := env.Decode(tt.v)
			if tt.ok != (err == nil) {
				t.Fatalf("Decode = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				var pe *Error
				if !errors.As(err, &pe) || pe.Code != CodeBadRequest {
					t.Fatalf("error %v is not a bad_request *Error", err)
				}
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	req := ChangePasswordRequest{User: "alice", Current: Secret("old pw"), New: Secret("new pw"), TOTP: "123456"}
	env, err := New(TypeChangePassword, req)
	if err != nil {
		t.Fatal(err)
	}
	env.ID, env.IdempotencyKey = "r1", "k1"
	b, err := Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	var back ChangePasswordRequest
	if err := got.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if !back.New.Equal(req.New) || !back.Current.Equal(req.Current) || back.TOTP != "123456" {
		t.Fatalf("round trip lost data: %+v", back)
	}
	res, _ := Result(got, nil, Errorf(CodeLocked, "locked"))
	if res.ID != "r1" || res.Error.Code != CodeLocked {
		t.Fatalf("Result = %+v", res)
	}
	if !errors.Is(res.Error, &Error{Code: CodeLocked}) {
		t.Fatal("errors.Is by code failed")
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2-correct-horse")
	req := ChangePasswordRequest{User: "alice", Current: s, New: s}
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
	logger.Info("test", "secret", s, "req", req)
	logger.Info("test", slog.Any("req_ptr", &req))
	outputs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %q %x %X %#v %+v %d", s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", req, req, &req), logBuf.String(),
	}
	for _, out := range outputs {
		if strings.Contains(out, "hunter2") || strings.Contains(out, fmt.Sprintf("%x", []byte("hunter2"))) {
			t.Fatalf("secret leaked: %s", out)
		}
		if !strings.Contains(out, Redacted) {
			t.Fatalf("no redaction marker in %q", out)
		}
	}
	b, _ := json.Marshal(req)
	var back ChangePasswordRequest
	if err := json.Unmarshal(b, &back); err != nil || !back.New.Equal(s) {
		t.Fatalf("JSON round trip failed: %v", err)
	}
	c := s.Clone()
	c.Wipe()
	if !bytes.Equal(c, make([]byte, len(s))) || s.Equal(c) {
		t.Fatal("Wipe did not zero the clone, or touched the original")
	}
}

func TestAuthMessageBindsDevice(t *testing.T) {
	ch := []byte("0123456789abcdef")
	if bytes.Equal(AuthMessage("dev-a", ch), AuthMessage("dev-b", ch)) {
		t.Fatal("messages for two devices are equal")
	}
	if bytes.Equal(AuthMessage("dev-a", ch), AuthMessage("dev-a", append([]byte("x"), ch...))) {
		t.Fatal("messages for two challenges are equal")
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"get_policy","id":"1"}`,
		`{"v":1,"type":"change_password","id":"1","idempotency_key":"k","body":{"user":"a","current":"eA==","new":"eQ=="}}`,
		`{"v":1,"type":"password_reset","seq":1,"body":{"user":"a","temporary":true}}`,
		`{"v":1,"type":"auth","body":{"device_id":"d","signature":"` + strings.Repeat("A", 88) + `"}}`,
		`{}`, `null`, `[]`, `{"v":1e400}`,
	} {
		f.Add([]byte(s))
	}
	bodies := map[string]func() any{
		TypeChangePassword: func() any { return &ChangePasswordRequest{} },
		TypeVerifyPassword: func() any { return &VerifyPasswordRequest{} },
		TypeGetAccount:     func() any { return &GetAccountRequest{} },
		TypeAckSync:        func() any { return &AckSyncRequest{} },
		TypeAckPush:        func() any { return &AckPush{} },
		TypeAuth:           func() any { return &Auth{} },
		TypeHello:          func() any { return &Hello{} },
		TypePasswordReset:  func() any { return &PasswordReset{} },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Decode(data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code == "" || pe.Message == "" {
				t.Fatalf("Decode error is not a complete *Error: %v", err)
			}
			return
		}
		if len(data) > MaxMessageSize {
			t.Fatalf("accepted %d bytes", len(data))
		}
		if err := env.Validate(); err != nil {
			t.Fatalf("decoded envelope does not validate: %v", err)
		}
		// Re-encoding a valid envelope must decode to the same framing.
		b, err := Encode(env)
		if err != nil {
			return // re-encoding can grow past the limit (escaping)
		}
		again, err := Decode(b)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.Type != env.Type || again.ID != env.ID || again.Seq != env.Seq || again.IdempotencyKey != env.IdempotencyKey {
			t.Fatalf("framing changed: %+v vs %+v", env, again)
		}
		if mk, ok := bodies[env.Type]; ok {
			_ = env.Decode(mk()) // must not panic
		}
	})
}
