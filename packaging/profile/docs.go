package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
	"howett.net/plist"

	"github.com/lockstep-dev/lockstep/packaging/layout"
)

// formatDefault renders a default for the documentation.
func formatDefault(k Key) string {
	switch d := k.Default.(type) {
	case nil:
		return "—"
	case string:
		if d == "" {
			return "empty"
		}
		return "`" + d + "`"
	case int64:
		return fmt.Sprint(d)
	case map[string]string:
		if len(d) == 0 {
			return "empty"
		}
	}
	return fmt.Sprint(k.Default)
}

// Markdown returns the reference of the managed preference keys.
func Markdown() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!-- Generated from packaging/profile (go test ./packaging/profile -update); do not edit. -->\n")
	fmt.Fprintf(&b, "# Lockstep configuration keys\n\n")
	fmt.Fprintf(&b, "lockstepd reads these keys from the managed preferences of the `%s` domain\n", Domain)
	fmt.Fprintf(&b, "(`%s`, written by macOS from an MDM configuration profile)\n", layout.ManagedPrefsPath)
	fmt.Fprintf(&b, "and from the local file `%s`. A key set by MDM wins over the\n", layout.LocalConfigPath)
	fmt.Fprintf(&b, "same key in the local file. Both are property lists with the same keys.\n\n")
	fmt.Fprintf(&b, "| Key | Type | Default | Required | Description |\n|---|---|---|---|---|\n")
	for _, k := range Keys() {
		if k.Internal || k.Deprecated {
			continue
		}
		desc := k.Description
		if k.Enum != nil {
			desc += " One of: " + strings.Join(k.Enum, ", ") + "."
		}
		if k.Type == Integer {
			desc += fmt.Sprintf(" Range %d–%d.", k.Min, k.Max)
		}
		if k.Sensitive {
			desc += " **Secret**: never logged; redacted in diagnostics."
		}
		req := "no"
		if k.Required {
			req = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k.Name, k.Type, formatDefault(k), req, desc)
	}
	fmt.Fprintf(&b, "\nDeprecated (accepted with any value and ignored; lockstepd names them in its log at start):\n\n")
	for _, k := range Keys() {
		if k.Deprecated {
			fmt.Fprintf(&b, "- `%s` (%s): %s\n", k.Name, k.Type, k.Description)
		}
	}
	fmt.Fprintf(&b, "\nFor development only (not in the MDM schema or the profile template):\n\n")
	for _, k := range Keys() {
		if k.Internal {
			fmt.Fprintf(&b, "- `%s` (%s, default %s): %s\n", k.Name, k.Type, formatDefault(k), k.Description)
		}
	}
	fmt.Fprintf(&b, "\nFiles in `packaging/mdm/`:\n\n")
	fmt.Fprintf(&b, "- `%s.mobileconfig`: a configuration profile template (payload type\n", Domain)
	fmt.Fprintf(&b, "  `com.apple.ManagedClient.preferences`); replace the placeholder URL and token, then sign it or upload\n")
	fmt.Fprintf(&b, "  it to the MDM. `lockstep-pkg profile` writes a filled one.\n")
	fmt.Fprintf(&b, "- `%s.schema.json`: a JSON schema (Jamf Pro \"Application & Custom Settings\" → External\n", Domain)
	fmt.Fprintf(&b, "  Applications → Custom Schema, preference domain `%s`).\n", Domain)
	fmt.Fprintf(&b, "- `jamf-ea-password-in-sync.sh`: a Jamf Pro extension attribute (String, Script) that reads the\n")
	fmt.Fprintf(&b, "  status file (`%s`) and prints `<result>true</result>`, `false` or `unknown`.\n", KeyStatusPlist)
	fmt.Fprintf(&b, "- `osquery-lockstep-status.sql` (and `fleet-lockstep-status.yml`, the same for `fleetctl apply`):\n")
	fmt.Fprintf(&b, "  each account's sync state from osquery's `plist` table; `osquery-lockstep-in-sync-policy.sql`: a\n")
	fmt.Fprintf(&b, "  policy that returns a row when every account is in sync.\n")
	return b.Bytes()
}

type schemaProp struct {
	Title                string          `json:"title"`
	Description          string          `json:"description"`
	PropertyOrder        int             `json:"property_order"`
	Type                 string          `json:"type"`
	Default              any             `json:"default,omitempty"`
	Enum                 []string        `json:"enum,omitempty"`
	Minimum              *int64          `json:"minimum,omitempty"`
	Maximum              *int64          `json:"maximum,omitempty"`
	Pattern              string          `json:"pattern,omitempty"`
	AdditionalProperties *schemaAddProps `json:"additionalProperties,omitempty"`
}

type schemaAddProps struct {
	Type string `json:"type"`
}

type schemaDoc struct {
	Schema      string                `json:"$schema"`
	Title       string                `json:"title"`
	Description string                `json:"description"`
	Domain      string                `json:"__preferencedomain"`
	Options     map[string]bool       `json:"options"`
	Required    []string              `json:"required"`
	Properties  map[string]schemaProp `json:"properties"`
}

// JSONSchema returns a JSON schema of the keys in the form Jamf Pro's
// Application & Custom Settings payload reads (title, description,
// property_order, type, default; plain JSON Schema otherwise, so other
// consoles and validators read it too).
func JSONSchema() []byte {
	doc := schemaDoc{
		Schema:      "http://json-schema.org/schema#",
		Title:       fmt.Sprintf("Lockstep (%s)", Domain),
		Description: "Managed preferences of the Lockstep agent (lockstepd).",
		Domain:      Domain,
		Options:     map[string]bool{"remove_empty_properties": true},
		Required:    []string{},
		Properties:  map[string]schemaProp{},
	}
	order := 0
	for _, k := range Keys() {
		if k.Internal || k.Deprecated {
			continue
		}
		order += 5
		p := schemaProp{Title: k.Title, Description: k.Description, PropertyOrder: order, Enum: k.Enum}
		switch k.Type {
		case String:
			p.Type = "string"
		case Integer:
			p.Type = "integer"
			p.Minimum, p.Maximum = &k.Min, &k.Max
		case Dictionary:
			p.Type = "object"
			p.AdditionalProperties = &schemaAddProps{Type: "string"}
		}
		switch d := k.Default.(type) {
		case string:
			if d != "" {
				p.Default = d
			}
		case int64:
			p.Default = d
		}
		if k.Name == KeyDirectoryURL {
			p.Pattern = "^wss://[^/?#]+"
		}
		if k.Required {
			doc.Required = append(doc.Required, k.Name)
		}
		doc.Properties[k.Name] = p
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // only fixed, marshalable types above
	}
	return append(b, '\n')
}

// ProfileOptions configures a generated .mobileconfig.
type ProfileOptions struct {
	// Values are the keys to set; they are validated with Validate and
	// must include the required keys.
	Values map[string]any
	// Organization is PayloadOrganization (optional).
	Organization string
	// Identifier is the profile's PayloadIdentifier; default
	// "dev.lockstep.agent.profile".
	Identifier string
}

// TemplateValues are the placeholder values of the checked-in template.
func TemplateValues() map[string]any {
	return map[string]any{
		KeyDirectoryURL:    "wss://lockstep.example.com/agent",
		KeyEnrollmentToken: "REPLACE-WITH-ONE-TIME-ENROLLMENT-TOKEN",
		KeyLogLevel:        "info",
		KeyUserMap:         map[string]string{},
	}
}

// MobileConfig returns a configuration profile that sets the values as
// forced managed preferences of Domain (payload type
// com.apple.ManagedClient.preferences, device scope). Payload UUIDs are
// derived from the identifier and the content, so the same input gives the
// same bytes and a changed profile gets new UUIDs.
func MobileConfig(o ProfileOptions) ([]byte, error) {
	if err := Validate(o.Values, true); err != nil {
		return nil, err
	}
	for name := range o.Values {
		if k, _ := Lookup(name); k.Internal {
			return nil, fmt.Errorf("%w: %s is for the simulator only", ErrInvalid, name)
		}
	}
	id := o.Identifier
	if id == "" {
		id = Domain + ".profile"
	}
	settings := map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(o.Values)) {
		v := o.Values[name]
		if n, ok := Int(v); ok {
			v = n
		}
		settings[name] = v
	}
	content, err := plist.Marshal(settings, plist.XMLFormat)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	ns := uuid.NewSHA1(uuid.NameSpaceOID, []byte(id))
	payloadUUID := uuid.NewSHA1(ns, append([]byte("settings\x00"), content...))
	profileUUID := uuid.NewSHA1(ns, append([]byte("profile\x00"+o.Organization+"\x00"), content...))
	inner := map[string]any{
		"PayloadContent": map[string]any{
			Domain: map[string]any{
				"Forced": []any{map[string]any{"mcx_preference_settings": settings}},
			},
		},
		"PayloadDisplayName": "Lockstep settings",
		"PayloadEnabled":     true,
		"PayloadIdentifier":  id + ".settings",
		"PayloadType":        "com.apple.ManagedClient.preferences",
		"PayloadUUID":        strings.ToUpper(payloadUUID.String()),
		"PayloadVersion":     1,
	}
	outer := map[string]any{
		"PayloadContent":           []any{inner},
		"PayloadDescription":       "Configures the Lockstep agent (managed preferences of " + Domain + ").",
		"PayloadDisplayName":       "Lockstep",
		"PayloadIdentifier":        id,
		"PayloadRemovalDisallowed": true,
		"PayloadScope":             "System",
		"PayloadType":              "Configuration",
		"PayloadUUID":              strings.ToUpper(profileUUID.String()),
		"PayloadVersion":           1,
	}
	if o.Organization != "" {
		outer["PayloadOrganization"] = o.Organization
	}
	b, err := plist.MarshalIndent(outer, plist.XMLFormat, "\t")
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return append(b, '\n'), nil
}

// Template returns the checked-in .mobileconfig template.
func Template() []byte {
	b, err := MobileConfig(ProfileOptions{Values: TemplateValues(), Organization: "Example Org"})
	if err != nil {
		panic(err) // the template values are fixed and valid; a test checks it
	}
	return b
}

// Settings extracts the forced managed preference settings for Domain
// from a .mobileconfig, as macOS would write them to
// /Library/Managed Preferences. It is what tests and `lockstep-pkg
// inspect-profile` use to check a profile.
func Settings(mobileconfig []byte) (map[string]any, error) {
	var outer struct {
		PayloadType    string
		PayloadContent []struct {
			PayloadType    string
			PayloadContent map[string]struct {
				Forced []struct {
					Settings map[string]any `plist:"mcx_preference_settings"`
				}
			}
		}
	}
	if _, err := plist.Unmarshal(mobileconfig, &outer); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if outer.PayloadType != "Configuration" {
		return nil, fmt.Errorf("profile: PayloadType %q, want Configuration", outer.PayloadType)
	}
	for _, p := range outer.PayloadContent {
		if p.PayloadType != "com.apple.ManagedClient.preferences" {
			continue
		}
		if d, ok := p.PayloadContent[Domain]; ok && len(d.Forced) > 0 {
			return d.Forced[0].Settings, nil
		}
	}
	return nil, fmt.Errorf("profile: no forced settings for %s", Domain)
}
