package cloud66

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Time is a time.Time that decodes the several timestamp styles Cloud 66
// returns (ISO 8601 in *_iso fields, "2006-01-02 15:04:05 UTC" in older
// ones). JSON null and "" decode to the zero Time. Decoded values are UTC.
type Time struct{ time.Time }

// parseTime accepts the layouts Cloud 66 is known to use. RFC 3339 parsing
// also accepts fractional seconds and numeric offsets
// ("2006-01-02T15:04:05.000+00:00").
func parseTime(s string) (time.Time, error) {
	layouts := [...]string{
		time.RFC3339Nano,
		"2006-01-02 15:04:05 UTC",   // legacy stack fields
		"2006-01-02 15:04:05 -0700", // Ruby Time#to_s
		"2006-01-02T15:04:05",       // no zone: Cloud 66 times are UTC
		"2006-01-02 15:04:05",
	}
	for _, layout := range layouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cloud66: unrecognised time %q", truncate(s, 64))
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' && !bytes.ContainsRune(b[1:n-1], '\\') {
		// Timestamps never need JSON escapes; skipping a second decoder
		// here halves what a stack list costs to decode.
		s = string(b[1 : n-1])
	} else if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("cloud66: time must be a JSON string: %w", err)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	parsed, err := parseTime(s)
	if err != nil {
		return err
	}
	t.Time = parsed
	return nil
}

// MarshalJSON emits RFC 3339 (with sub-seconds only when present), or null
// for the zero Time so a round trip keeps "unset" distinct.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.Time.Format(time.RFC3339Nano))
}

// lenientTime holds a fallback timestamp undecoded: it is parsed only when
// the *_iso field it backs up is missing (it almost never is), and an
// unparsable legacy value is dropped rather than failing the response.
type lenientTime struct{ raw []byte }

// UnmarshalJSON implements json.Unmarshaler.
func (t *lenientTime) UnmarshalJSON(b []byte) error {
	t.raw = append(t.raw[:0], b...)
	return nil
}

// orElse returns t, or fallback when t is zero.
func orElse(t Time, fallback lenientTime) Time {
	if !t.IsZero() || len(fallback.raw) == 0 {
		return t
	}
	var v Time
	if v.UnmarshalJSON(fallback.raw) != nil {
		return Time{}
	}
	return v
}
