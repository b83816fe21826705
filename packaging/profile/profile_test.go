package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"howett.net/plist"
)

var update = flag.Bool("update", false, "rewrite the generated files in packaging/mdm")

// TestGeneratedFiles keeps the checked-in documents equal to what the key
// list generates (run with -update after changing a key).
func TestGeneratedFiles(t *testing.T) {
	files := map[string][]byte{
		"managed-preferences.md": Markdown(),
		Domain + ".schema.json":  JSONSchema(),
		Domain + ".mobileconfig": Template(),
	}
	for name, want := range files {
		p := filepath.Join("..", "mdm", name)
		if *update {
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (run go test ./packaging/profile -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go test ./packaging/profile -update", p)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		prefs    map[string]any
		complete bool
		want     []error
	}{
		{"minimal", map[string]any{"DirectoryURL": "wss://dir.example.com/agent"}, true, nil},
		{"all keys as plist decodes them", map[string]any{
			"DirectoryURL": "wss://dir.example.com:8443/agent", "EnrollmentToken": "t", "DirectoryCA": "/etc/ca.pem",
			"StateDir": "/var/db/x", "Socket": "/tmp/s.sock", "ToolsDir": "/sim/bin",
			"UserMap": map[string]any{"jdoe": "john.doe"}, "LogLevel": "debug",
		}, true, nil},
		{"deprecated key with any value", map[string]any{"ExpiryWarningDays": "ten"}, false, nil},
		{"deprecated key as an old profile sets it", map[string]any{"ExpiryWarningDays": uint64(30)}, false, nil},
		{"missing required", map[string]any{"LogLevel": "info"}, true, []error{ErrMissing}},
		{"partial file need not be complete", map[string]any{"LogLevel": "info"}, false, nil},
		{"plain ws to a remote host", map[string]any{"DirectoryURL": "ws://dir.example.com/agent"}, true, []error{ErrInvalid}},
		{"plain ws to loopback", map[string]any{"DirectoryURL": "ws://127.0.0.1:8080/agent"}, true, nil},
		{"https scheme", map[string]any{"DirectoryURL": "https://dir.example.com"}, true, []error{ErrInvalid}},
		{"socket path too long for sun_path", map[string]any{"Socket": "/" + strings.Repeat("s", 103)}, false, []error{ErrInvalid}},
		{"relative tools dir", map[string]any{"ToolsDir": "sim"}, false, []error{ErrInvalid}},
		{"bad log level", map[string]any{"LogLevel": "verbose"}, false, []error{ErrInvalid}},
		{"relative CA path", map[string]any{"DirectoryCA": "ca.pem"}, false, []error{ErrInvalid}},
		{"user map with a number", map[string]any{"UserMap": map[string]any{"a": int64(1)}}, false, []error{ErrInvalid}},
		{"user map with empty name", map[string]any{"UserMap": map[string]any{"a": ""}}, false, []error{ErrInvalid}},
		{"unknown key", map[string]any{"DirectoryUrl": "wss://x"}, false, []error{ErrUnknownKey}},
		{"several problems", map[string]any{"Foo": 1, "LogLevel": 3}, true, []error{ErrUnknownKey, ErrInvalid, ErrMissing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.prefs, tt.complete)
			if len(tt.want) == 0 && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(tt.want) > 0 && err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not wrap %v", err, w)
				}
			}
		})
	}
}

func TestDefaultsAreValid(t *testing.T) {
	d := Defaults()
	if err := Validate(d, false); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"StateDir": "/Library/Application Support/Lockstep", "Socket": "/var/run/lockstepd.sock",
		"LogLevel": "info", "ToolsDir": "", "StatusPlist": "/Library/Application Support/Lockstep/status.plist"}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("default %s = %v, want %v", k, d[k], v)
		}
	}
	if _, ok := d["DirectoryURL"]; ok {
		t.Error("DirectoryURL has a default")
	}
	if k, _ := Lookup("EnrollmentToken"); !k.Sensitive {
		t.Error("EnrollmentToken not marked sensitive")
	}
	// Keys returns copies: changing one must not change the list.
	for _, k := range Keys() {
		if m, ok := k.Default.(map[string]string); ok {
			m["x"] = "y"
		}
	}
	if k, _ := Lookup("UserMap"); len(k.Default.(map[string]string)) != 0 {
		t.Error("Keys shares its defaults with the caller")
	}
}

var uuidRe = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)

// TestMobileConfig parses the template as MDM and macOS would and checks
// the keys a profile needs and the settings it forces.
func TestMobileConfig(t *testing.T) {
	b := Template()
	var p map[string]any
	if format, err := plist.Unmarshal(b, &p); err != nil || format != plist.XMLFormat {
		t.Fatalf("template does not parse as an XML plist: %v (format %d)", err, format)
	}
	for _, k := range []string{"PayloadContent", "PayloadDisplayName", "PayloadIdentifier", "PayloadType", "PayloadUUID", "PayloadVersion", "PayloadScope"} {
		if _, ok := p[k]; !ok {
			t.Errorf("profile lacks %s", k)
		}
	}
	if p["PayloadType"] != "Configuration" || p["PayloadScope"] != "System" {
		t.Errorf("PayloadType %v, PayloadScope %v", p["PayloadType"], p["PayloadScope"])
	}
	inner := p["PayloadContent"].([]any)[0].(map[string]any)
	if inner["PayloadType"] != "com.apple.ManagedClient.preferences" {
		t.Errorf("inner PayloadType %v", inner["PayloadType"])
	}
	for _, u := range []any{p["PayloadUUID"], inner["PayloadUUID"]} {
		if s, _ := u.(string); !uuidRe.MatchString(s) {
			t.Errorf("PayloadUUID %v is not an upper-case UUID", u)
		}
	}
	if p["PayloadUUID"] == inner["PayloadUUID"] {
		t.Error("profile and payload share a UUID")
	}
	s, err := Settings(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(s, true); err != nil {
		t.Fatalf("forced settings do not validate: %v", err)
	}
	if s["DirectoryURL"] != "wss://lockstep.example.com/agent" {
		t.Errorf("DirectoryURL %v", s["DirectoryURL"])
	}
	if _, ok := s["ExpiryWarningDays"]; ok {
		t.Error("the template sets the deprecated ExpiryWarningDays")
	}

	// Different values give different UUIDs; the same values the same bytes.
	v := TemplateValues()
	v["LogLevel"] = "debug"
	other, err := MobileConfig(ProfileOptions{Values: v, Organization: "Example Org"})
	if err != nil {
		t.Fatal(err)
	}
	var q map[string]any
	plist.Unmarshal(other, &q)
	if q["PayloadUUID"] == p["PayloadUUID"] {
		t.Error("changed settings kept the profile UUID")
	}
	if !bytes.Equal(Template(), b) {
		t.Error("template not deterministic")
	}
	if _, err := MobileConfig(ProfileOptions{Values: map[string]any{"LogLevel": "info"}}); !errors.Is(err, ErrMissing) {
		t.Errorf("profile without DirectoryURL: %v", err)
	}
	if _, err := MobileConfig(ProfileOptions{Values: map[string]any{"DirectoryURL": "wss://x", "ToolsDir": "/sim"}}); err == nil {
		t.Error("profile setting the simulator-only ToolsDir accepted")
	}
}

func TestJSONSchema(t *testing.T) {
	var doc struct {
		Title      string
		Domain     string   `json:"__preferencedomain"`
		Required   []string `json:"required"`
		Properties map[string]struct {
			Type          string
			Title         string
			Description   string
			PropertyOrder int `json:"property_order"`
			Default       any
			Enum          []string
		}
	}
	if err := json.Unmarshal(JSONSchema(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Domain != "dev.lockstep.agent" || len(doc.Required) != 1 || doc.Required[0] != "DirectoryURL" {
		t.Fatalf("domain %q required %v", doc.Domain, doc.Required)
	}
	types := map[Type]string{String: "string", Integer: "integer", Dictionary: "object"}
	orders := map[int]bool{}
	for _, k := range Keys() {
		p, ok := doc.Properties[k.Name]
		if k.Internal || k.Deprecated {
			if ok {
				t.Errorf("internal or deprecated key %s in the MDM schema", k.Name)
			}
			continue
		}
		if !ok {
			t.Errorf("schema lacks %s", k.Name)
			continue
		}
		if p.Type != types[k.Type] || p.Title == "" || p.Description == "" || orders[p.PropertyOrder] {
			t.Errorf("%s: %+v", k.Name, p)
		}
		orders[p.PropertyOrder] = true
	}
	if doc.Properties["LogLevel"].Default != "info" || len(doc.Properties["LogLevel"].Enum) != 4 {
		t.Errorf("LogLevel %+v", doc.Properties["LogLevel"])
	}
	if _, ok := doc.Properties["ExpiryWarningDays"]; ok {
		t.Error("the schema offers the deprecated ExpiryWarningDays")
	}
}
