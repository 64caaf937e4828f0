package cloud66

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' && !bytes.ContainsRune(b[1:n-1], '\\') {
		// Timestamps never need JSON escapes; skipping a second decoder
		// here halves what a stack list costs to decode.
		return t.parse(b[1 : n-1])
	}
	s, err := unquote(b)
	if err != nil {
		return fmt.Errorf("cloud66: time must be a JSON string: %w", err)
	}
	return t.parse([]byte(s))
}

// unquote decodes a JSON string the slow way, for the rare timestamp with
// escapes.
func unquote(b []byte) (string, error) {
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// parse sets t from a timestamp's text; blank is the zero Time.
func (t *Time) parse(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		t.Time = time.Time{}
		return nil
	}
	if v, ok := parseISOZ(b); ok {
		t.Time = v
		return nil
	}
	parsed, err := parseTime(string(b))
	if err != nil {
		return err
	}
	t.Time = parsed
	return nil
}

// parseISOZ parses "2006-01-02T15:04:05Z", the form of every *_iso field
// Cloud 66 sends, without allocating; ok is false for anything else, or
// anything time.Parse would refuse, which parseTime then handles. The
// result is the one parseTime gives.
func parseISOZ(b []byte) (time.Time, bool) {
	if len(b) != 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[19] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), true
}

// daysIn is the number of days in month of year.
func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
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
