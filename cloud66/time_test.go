package cloud66

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTimeUnmarshal(t *testing.T) {
	t.Parallel()
	ref := time.Date(2014, 8, 14, 15, 3, 51, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: `"2014-08-14T15:03:51Z"`, want: ref},
		{in: `"2014-08-14T15:03:51+00:00"`, want: ref},
		{in: `"2014-08-14T17:03:51+02:00"`, want: ref},
		{in: `"2014-08-14T15:03:51.000+00:00"`, want: ref},
		{in: `"2014-08-14T15:03:51.123456789Z"`, want: ref.Add(123456789)},
		{in: `"2014-08-14 15:03:51 UTC"`, want: ref},
		{in: `"2014-08-14 16:03:51 +0100"`, want: ref},
		{in: `"2014-08-14T15:03:51"`, want: ref},
		{in: `"2014-08-14 15:03:51"`, want: ref},
		{in: `" 2014-08-14T15:03:51Z "`, want: ref},
		{in: `null`},
		{in: `""`},
		{in: `"   "`},
		{in: `"yesterday"`, wantErr: true},
		{in: `"2014-13-14T15:03:51Z"`, wantErr: true},
		{in: `1408028631`, wantErr: true},
		{in: `true`, wantErr: true},
		{in: `{}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var got Time
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if !got.Equal(tt.want) || got.IsZero() != tt.want.IsZero() {
				t.Errorf("got %v, want %v", got.Time, tt.want)
			}
			if !got.IsZero() && got.Location() != time.UTC {
				t.Errorf("location = %v, want UTC", got.Location())
			}
		})
	}
}

func TestTimeMarshal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Time
		want string
	}{
		{Time{}, `null`},
		{Time{time.Date(2014, 8, 14, 15, 3, 51, 0, time.UTC)}, `"2014-08-14T15:03:51Z"`},
		{Time{time.Date(2014, 8, 14, 15, 3, 51, 5e8, time.UTC)}, `"2014-08-14T15:03:51.5Z"`},
		{Time{time.Date(2014, 8, 14, 17, 3, 51, 0, time.FixedZone("x", 7200))}, `"2014-08-14T17:03:51+02:00"`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("Marshal(%v) = %s, want %s", tt.in.Time, b, tt.want)
		}
		var back Time
		if err := json.Unmarshal(b, &back); err != nil || !back.Equal(tt.in.Time) {
			t.Errorf("round trip of %s: %v, %v", b, back.Time, err)
		}
	}
	// As a struct field (value, not pointer) the custom marshaller is used too.
	b, _ := json.Marshal(struct{ T Time }{})
	if string(b) != `{"T":null}` {
		t.Errorf("field marshal = %s", b)
	}
}

// parseISOZ must give what time.Parse gives, or leave the input to it.
func TestParseISOZMatchesTimeParse(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"2026-11-23T10:00:00Z", "2024-02-29T23:59:59Z", "2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
		"2026-00-10T00:00:00Z", "2026-04-31T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z",
		"2026-01-01T00:00:60Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-01-01t00:00:00Z",
		"2026-01-01T00:00:00z", "+026-01-01T00:00:00Z", "2026-1-01T00:00:00Z", "2026-01-01T00:00:0aZ",
	} {
		got, ok := parseISOZ([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if ok && (err != nil || got != want.UTC()) {
			t.Errorf("parseISOZ(%q) = %v, time.Parse = %v, %v", s, got, want, err)
		}
		if !ok && err == nil && len(s) == 20 && s[19] == 'Z' && s[10] == 'T' {
			t.Errorf("parseISOZ(%q) declined what time.Parse reads as %v", s, want)
		}
	}
}

func FuzzParseISOZ(f *testing.F) {
	f.Add("2026-11-23T10:00:00Z")
	f.Add("2024-02-29T23:59:59Z")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseISOZ([]byte(s))
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || got != want.UTC() {
			t.Errorf("parseISOZ(%q) = %v, time.Parse = %v, %v", s, got, want, err)
		}
	})
}
