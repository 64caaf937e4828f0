package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// minutesPerWeek is the length of the cycle freezes repeat on.
const minutesPerWeek = 7 * 24 * 60

// WeekTime is a wall-clock minute of the week, as "Fri 16:00".
type WeekTime struct {
	// Day is the day of the week.
	Day time.Weekday
	// Minute is the minute of the day, 0..1439.
	Minute int
}

// String renders w the way the file writes it: "Fri 16:00".
func (w WeekTime) String() string {
	day := "???"
	if w.Day >= time.Sunday && w.Day <= time.Saturday {
		day = dayName(w.Day)
	}
	return fmt.Sprintf("%s %02d:%02d", day, w.Minute/60, w.Minute%60)
}

// dayName is the three-letter English name of d ("Fri"); time.Weekday's
// names are English whatever the host's locale, which is what the file uses.
func dayName(d time.Weekday) string {
	return d.String()[:3]
}

// ofWeek is w as minutes since Sunday 00:00.
func (w WeekTime) ofWeek() int {
	return int(w.Day)*24*60 + w.Minute
}

// parseWeekTime reads "Mon 08:00": a three-letter English day in any case,
// then a 24-hour time (a one-digit hour, "Mon 8:00", is unambiguous and
// accepted). It is strict otherwise on purpose: "Friday 4pm" could be read
// several ways, and a freeze read the wrong way fails open.
func parseWeekTime(s string) (WeekTime, bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return WeekTime{}, false
	}
	day := -1
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(f[0], dayName(d)) {
			day = int(d)
		}
	}
	hh, mm, ok := strings.Cut(f[1], ":")
	if day < 0 || !ok || len(hh) < 1 || len(hh) > 2 || len(mm) != 2 {
		return WeekTime{}, false
	}
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	// Atoi accepts a sign, which a clock never has.
	if err1 != nil || err2 != nil || hh[0] == '+' || hh[0] == '-' || mm[0] == '+' || mm[0] == '-' ||
		h < 0 || h > 23 || m < 0 || m > 59 {
		return WeekTime{}, false
	}
	return WeekTime{Day: time.Weekday(day), Minute: h*60 + m}, true
}

// Active reports whether the freeze's window covers now, reading the window
// in the freeze's zone as wall-clock time: "Fri 16:00" is 16:00 on the
// clocks of that zone on every Friday, summer or winter. A window whose To
// comes before its From wraps over the week's end (Fri 16:00 → Mon 08:00).
// From is inclusive and To exclusive, to the minute. When active, the
// second value is the instant, in UTC, when the zone's clocks next show To;
// on a day the clocks go back and show it twice, that is the first showing
// still ahead of now. When not active it is the zero time. A window with
// From equal to To (Parse refuses it) is empty.
func (f Freeze) Active(now time.Time) (bool, time.Time) {
	loc := f.Location
	if loc == nil {
		loc = time.UTC
	}
	local := now.In(loc)
	dayMinute := local.Hour()*60 + local.Minute()
	m := int(local.Weekday())*24*60 + dayMinute
	from, to := f.From.ofWeek(), f.To.ofWeek()
	var on bool
	switch {
	case from < to:
		on = from <= m && m < to
	case from > to:
		on = m >= from || m < to
	}
	if !on {
		return false, time.Time{}
	}
	// Count wall-clock minutes to To and let time.Date place that wall time
	// in the zone, so a DST change inside the window moves the end by the
	// hour the clocks moved instead of leaving it an hour off.
	ahead := ((to-m)%minutesPerWeek + minutesPerWeek) % minutesPerWeek
	total := dayMinute + ahead
	y, mo, d := local.Date()
	end := time.Date(y, mo, d+total/(24*60), f.To.Minute/60, f.To.Minute%60, 0, 0, loc)
	if !end.After(now) {
		// The clocks went back over To and time.Date picked the showing
		// already behind us; now is past that change, so now's offset is the
		// one of the showing still to come.
		_, offEnd := end.Zone()
		_, offNow := local.Zone()
		end = end.Add(time.Duration(offEnd-offNow) * time.Second)
	}
	return true, end.UTC()
}
