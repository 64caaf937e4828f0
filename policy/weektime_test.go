package policy

import (
	"reflect"
	"testing"
	"time"
)

// zone loads a zone the tests rely on; the test binary has no embedded
// tzdata, so a host without zoneinfo fails here, visibly, rather than
// later with a confusing wrong time.
func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

// utc is a minute in UTC.
func utc(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
}

func TestParseWeekTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   WeekTime
		wantOK bool
	}{
		{"Mon 08:00", WeekTime{time.Monday, 480}, true},
		{"fri 16:00", WeekTime{time.Friday, 960}, true},
		{"SUN 00:00", WeekTime{time.Sunday, 0}, true},
		{"Sat 23:59", WeekTime{time.Saturday, 1439}, true},
		{"  Tue   9:05 ", WeekTime{time.Tuesday, 545}, true},
		{"Friday 16:00", WeekTime{}, false},
		{"Fri 24:00", WeekTime{}, false},
		{"Fri 16:60", WeekTime{}, false},
		{"Fri 16", WeekTime{}, false},
		{"Fri 16:0", WeekTime{}, false},
		{"Fri 016:00", WeekTime{}, false},
		{"Fri -1:00", WeekTime{}, false},
		{"Fri +1:00", WeekTime{}, false},
		{"Fri 1:+0", WeekTime{}, false},
		{"Fri 4pm", WeekTime{}, false},
		{"16:00 Fri", WeekTime{}, false},
		{"Fri", WeekTime{}, false},
		{"", WeekTime{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := parseWeekTime(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseWeekTime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
			if ok {
				if back, _ := parseWeekTime(got.String()); back != got {
					t.Errorf("%v does not survive String and parse: %v", got, back)
				}
			}
		})
	}
}

func TestWeekTimeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		w    WeekTime
		want string
	}{
		{WeekTime{time.Friday, 960}, "Fri 16:00"},
		{WeekTime{time.Monday, 480}, "Mon 08:00"},
		{WeekTime{time.Sunday, 0}, "Sun 00:00"},
		{WeekTime{time.Saturday, 1439}, "Sat 23:59"},
		{WeekTime{time.Weekday(9), 5}, "??? 00:05"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := tt.w.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFreezeActive(t *testing.T) {
	t.Parallel()
	london, newYork, tokyo := zone(t, "Europe/London"), zone(t, "America/New_York"), zone(t, "Asia/Tokyo")
	wt := func(s string) WeekTime {
		w, ok := parseWeekTime(s)
		if !ok {
			t.Fatalf("bad week time %q", s)
		}
		return w
	}
	weekend := Freeze{Name: "weekend", From: wt("Fri 16:00"), To: wt("Mon 08:00"), Location: london}
	night := Freeze{Name: "night", From: wt("Sat 22:00"), To: wt("Sun 06:00"), Location: london}
	early := Freeze{Name: "early", From: wt("Sun 00:00"), To: wt("Sun 03:00"), Location: london}
	twice := Freeze{Name: "twice", From: wt("Sun 00:00"), To: wt("Sun 01:30"), Location: newYork}
	office := Freeze{Name: "office", From: wt("Mon 09:00"), To: wt("Mon 17:00")} // no zone: UTC
	empty := Freeze{Name: "empty", From: wt("Mon 09:00"), To: wt("Mon 09:00")}

	// January 2026: Fri 2, Sat 3, Sun 4, Mon 5; London is on UTC.
	// July 2026: Fri 3, Mon 6; London is on UTC+1.
	// 25 Oct 2026: London's clocks go back at 01:00 UTC (02:00 BST → 01:00 GMT).
	// 29 Mar 2026: London's clocks go forward at 01:00 UTC (01:00 GMT → 02:00 BST).
	// 1 Nov 2026: New York's clocks go back at 06:00 UTC (02:00 EDT → 01:00 EST).
	tests := []struct {
		name      string
		f         Freeze
		now       time.Time
		wantOn    bool
		wantUntil time.Time
	}{
		{"Friday a minute before", weekend, utc(2026, 1, 2, 15, 59), false, time.Time{}},
		{"Friday at from (inclusive)", weekend, utc(2026, 1, 2, 16, 0), true, utc(2026, 1, 5, 8, 0)},
		{"seen from Saturday", weekend, utc(2026, 1, 3, 12, 0), true, utc(2026, 1, 5, 8, 0)},
		{"Sunday 23:59, over the week's end", weekend, utc(2026, 1, 4, 23, 59), true, utc(2026, 1, 5, 8, 0)},
		{"Monday 07:59", weekend, utc(2026, 1, 5, 7, 59), true, utc(2026, 1, 5, 8, 0)},
		{"Monday 07:59:59.9", weekend, utc(2026, 1, 5, 7, 59).Add(59900 * time.Millisecond), true, utc(2026, 1, 5, 8, 0)},
		{"Monday 08:00 (exclusive)", weekend, utc(2026, 1, 5, 8, 0), false, time.Time{}},
		{"midweek", weekend, utc(2026, 1, 7, 12, 0), false, time.Time{}},
		{"now given in another zone", weekend, time.Date(2026, 1, 3, 1, 0, 0, 0, tokyo), true, utc(2026, 1, 5, 8, 0)},
		{"summer: 15:59 BST", weekend, utc(2026, 7, 3, 14, 59), false, time.Time{}},
		{"summer: 16:00 BST", weekend, utc(2026, 7, 3, 15, 0), true, utc(2026, 7, 6, 7, 0)},
		{"October: starts in BST, ends in GMT", weekend, utc(2026, 10, 23, 15, 0), true, utc(2026, 10, 26, 8, 0)},
		{"October: 01:30 BST, first pass", weekend, utc(2026, 10, 25, 0, 30), true, utc(2026, 10, 26, 8, 0)},
		{"October night: 21:59 BST", night, utc(2026, 10, 24, 20, 59), false, time.Time{}},
		{"October night: 22:00 BST, nine hours to go", night, utc(2026, 10, 24, 21, 0), true, utc(2026, 10, 25, 6, 0)},
		{"October night: 05:59 GMT", night, utc(2026, 10, 25, 5, 59), true, utc(2026, 10, 25, 6, 0)},
		{"October night: 06:00 GMT", night, utc(2026, 10, 25, 6, 0), false, time.Time{}},
		{"March: clocks go forward inside", early, utc(2026, 3, 29, 0, 30), true, utc(2026, 3, 29, 2, 0)},
		{"March: 03:00 BST", early, utc(2026, 3, 29, 2, 0), false, time.Time{}},
		{"New York: 01:15 EDT", twice, utc(2026, 11, 1, 5, 15), true, utc(2026, 11, 1, 5, 30)},
		{"New York: 01:45 EDT", twice, utc(2026, 11, 1, 5, 45), false, time.Time{}},
		{"New York: 01:15 EST, the second pass", twice, utc(2026, 11, 1, 6, 15), true, utc(2026, 11, 1, 6, 30)},
		{"no zone is UTC: inside", office, utc(2026, 1, 5, 9, 0), true, utc(2026, 1, 5, 17, 0)},
		{"no zone is UTC: at to", office, utc(2026, 1, 5, 17, 0), false, time.Time{}},
		{"no zone is UTC: Sunday", office, utc(2026, 1, 4, 12, 0), false, time.Time{}},
		{"from equals to is empty", empty, utc(2026, 1, 5, 9, 0), false, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			on, until := tt.f.Active(tt.now)
			if on != tt.wantOn || !until.Equal(tt.wantUntil) {
				t.Errorf("%s.Active(%v) = %v, %v; want %v, %v", tt.f.Name, tt.now.UTC(), on, until, tt.wantOn, tt.wantUntil)
			}
			if on && until.Location() != time.UTC {
				t.Errorf("until is in %v, want UTC", until.Location())
			}
		})
	}
}

const freezePolicy = `
freeze:
  - name: weekend
    from: "Fri 16:00"
    to: "Mon 08:00"
    timezone: Europe/London
    environments: [production]
  - name: friday-evening
    from: "Fri 20:00"
    to: "Sat 00:00"
    timezone: UTC
    environments: [staging]
  - name: saturday-morning
    from: "Sat 00:00"
    to: "Sat 06:00"
    timezone: UTC
    environments: [Staging]
  - name: eu-maintenance
    from: "Wed 10:00"
    to: "Wed 11:00"
    timezone: UTC
    stacks: "shop-eu*"
  - name: release
    from: "Wed 10:00"
    to: "Wed 11:00"
    timezone: UTC
    environments: [preview]
    actions: [deploy, rollback]
  - name: deploys-evening
    from: "Thu 18:00"
    to: "Thu 20:00"
    timezone: UTC
    environments: [preview]
    actions: [deploy]
  - name: restarts-night
    from: "Thu 20:00"
    to: "Thu 23:00"
    timezone: UTC
    environments: [preview]
    actions: [restart]
rules:
  - name: prod
    environments: [production]
    deployers: [U0ALICE]
`

func TestDecideFreeze(t *testing.T) {
	t.Parallel()
	p := mustParse(t, freezePolicy)
	alice, bob := Subject{User: "U0ALICE"}, Subject{User: "U0BOB"}
	tests := []struct {
		name        string
		s           Subject
		t           Target
		now         time.Time
		wantAllowed bool
		want        *FreezeHit
	}{
		{"production on Saturday", alice, Target{"shop", "production", ""}, utc(2026, 1, 3, 12, 0), true,
			&FreezeHit{Name: "weekend", Until: utc(2026, 1, 5, 8, 0)}},
		{"the freeze is reported whatever the rules say", bob, Target{"shop", "production", ""}, utc(2026, 1, 3, 12, 0), false,
			&FreezeHit{Name: "weekend", Until: utc(2026, 1, 5, 8, 0)}},
		{"production midweek", alice, Target{"shop", "production", ""}, utc(2026, 1, 7, 12, 0), true, nil},
		{"environments filter", alice, Target{"shop", "qa", ""}, utc(2026, 1, 3, 12, 0), true, nil},
		{"back-to-back windows end together", bob, Target{"shop", "STAGING", ""}, utc(2026, 1, 2, 21, 0), true,
			&FreezeHit{Name: "friday-evening", Until: utc(2026, 1, 3, 6, 0)}},
		{"the second window alone", bob, Target{"shop", "staging", ""}, utc(2026, 1, 3, 3, 0), true,
			&FreezeHit{Name: "saturday-morning", Until: utc(2026, 1, 3, 6, 0)}},
		{"stacks glob, case-insensitive", bob, Target{"Shop-EU-1", "qa", ""}, utc(2026, 1, 7, 10, 30), true,
			&FreezeHit{Name: "eu-maintenance", Until: utc(2026, 1, 7, 11, 0)}},
		{"stacks glob excludes", bob, Target{"shop-us", "qa", ""}, utc(2026, 1, 7, 10, 30), true, nil},
		{"a freeze without actions stops restarts", alice, Target{"shop", "production", ActionRestart}, utc(2026, 1, 3, 12, 0), true,
			&FreezeHit{Name: "weekend", Until: utc(2026, 1, 5, 8, 0)}},
		{"and reboots", alice, Target{"shop", "production", ActionReboot}, utc(2026, 1, 3, 12, 0), true,
			&FreezeHit{Name: "weekend", Until: utc(2026, 1, 5, 8, 0)}},
		{"a deploy freeze stops deploys", bob, Target{"shop", "preview", ActionDeploy}, utc(2026, 1, 7, 10, 30), true,
			&FreezeHit{Name: "release", Until: utc(2026, 1, 7, 11, 0)}},
		{"and the rollbacks it lists", bob, Target{"shop", "preview", ActionRollback}, utc(2026, 1, 7, 10, 30), true,
			&FreezeHit{Name: "release", Until: utc(2026, 1, 7, 11, 0)}},
		{"but not restarts", bob, Target{"shop", "preview", ActionRestart}, utc(2026, 1, 7, 10, 30), true, nil},
		{"nor maintenance", bob, Target{"shop", "preview", ActionMaintenance}, utc(2026, 1, 7, 10, 30), true, nil},
		{"a window for another verb does not extend a deploy freeze", bob, Target{"shop", "preview", ActionDeploy}, utc(2026, 1, 8, 19, 0), true,
			&FreezeHit{Name: "deploys-evening", Until: utc(2026, 1, 8, 20, 0)}},
		{"a restart is free before its window", bob, Target{"shop", "preview", ActionRestart}, utc(2026, 1, 8, 19, 0), true, nil},
		{"and frozen in it", bob, Target{"shop", "preview", ActionRestart}, utc(2026, 1, 8, 21, 0), true,
			&FreezeHit{Name: "restarts-night", Until: utc(2026, 1, 8, 23, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := p.Decide(tt.s, tt.t, tt.now)
			if d.Allowed != tt.wantAllowed || !reflect.DeepEqual(d.Freeze, tt.want) {
				t.Errorf("Decide(%+v, %+v, %v): Allowed %v, Freeze %+v; want %v, %+v",
					tt.s, tt.t, tt.now, d.Allowed, d.Freeze, tt.wantAllowed, tt.want)
			}
		})
	}
}

// TestDecideFreezeCoversTheWeek checks that windows covering every minute of
// the week end the search instead of looping.
func TestDecideFreezeCoversTheWeek(t *testing.T) {
	t.Parallel()
	p := mustParse(t, `
freeze:
  - name: first-half
    from: "Sun 00:00"
    to: "Wed 12:00"
    timezone: UTC
  - name: second-half
    from: "Wed 12:00"
    to: "Sun 00:00"
    timezone: UTC
`)
	now := utc(2026, 1, 7, 12, 0)
	d := p.Decide(Subject{User: "U0ALICE"}, Target{"shop", "production", ""}, now)
	if d.Freeze == nil || d.Freeze.Name != "second-half" || !d.Freeze.Until.After(now) {
		t.Errorf("Freeze = %+v, want second-half with an end after now", d.Freeze)
	}
}
