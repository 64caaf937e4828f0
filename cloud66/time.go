package cloud66

import (
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
	if err := json.Unmarshal(b, &s); err != nil {
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

// lenientTime decodes a fallback timestamp: an unparsable legacy value is
// dropped rather than failing the whole response, because the *_iso field
// it backs up is the authoritative one.
type lenientTime struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *lenientTime) UnmarshalJSON(b []byte) error {
	var v Time
	if v.UnmarshalJSON(b) == nil {
		t.Time = v.Time
	}
	return nil
}

// orElse returns t, or fallback when t is zero.
func orElse(t Time, fallback lenientTime) Time {
	if t.IsZero() {
		return Time{fallback.Time}
	}
	return t
}
