package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cron is a parsed 5-field cron schedule: minute, hour, day of month,
// month, day of week. Each field is "*", a number or name, a range "a-b",
// a step "*/n", "a-b/n" or "a/n" (a to the end), or a comma-separated list
// of these. Months may be written jan–dec, days of the week sun–sat (0 and
// 7 are Sunday). As in classic cron, when both day fields are restricted a
// day matching either one matches. The macros @yearly (@annually),
// @monthly, @weekly, @daily (@midnight) and @hourly are accepted.
type Cron struct {
	expr                          string
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	domAny, dowAny                bool   // the field is "*"
}

var cronMacros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

var (
	monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is min+i
}

var cronFields = [5]cronField{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, monthNames},
	{"day of week", 0, 7, dayNames},
}

// ParseCron parses a 5-field cron expression such as "0 3 * * *" (every day
// at 03:00) or "*/15 9-17 * * mon-fri".
func ParseCron(expr string) (*Cron, error) {
	c, reason := parseCron(expr)
	if reason != "" {
		return nil, fmt.Errorf("invalid cron expression %q: %s", expr, reason)
	}
	return c, nil
}

const cronUsage = `write 5 fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * *" (every day at 03:00)`

func parseCron(expr string) (*Cron, string) {
	s := strings.TrimSpace(expr)
	if m, ok := cronMacros[strings.ToLower(s)]; ok {
		s = m
	} else if strings.HasPrefix(s, "@") {
		return nil, "unknown macro; use @yearly, @monthly, @weekly, @daily or @hourly, or " + cronUsage
	}
	f := strings.Fields(s)
	if len(f) != 5 {
		return nil, fmt.Sprintf("has %d fields; %s", len(f), cronUsage)
	}
	c := &Cron{expr: expr}
	bits := []*uint64{&c.minute, &c.hour, &c.dom, &c.month, &c.dow}
	for i, field := range cronFields {
		b, reason := field.parse(f[i])
		if reason != "" {
			return nil, fmt.Sprintf("%s field %q: %s", field.name, f[i], reason)
		}
		*bits[i] = b
	}
	if c.dow&(1<<7) != 0 {
		c.dow = c.dow&^(1<<7) | 1
	}
	c.domAny, c.dowAny = f[2] == "*", f[4] == "*"
	if !c.domAny && c.dowAny {
		// Only the day of month restricts: make sure some selected month has
		// some selected day ("30 2" never happens).
		possible := false
		for m := 1; m <= 12 && !possible; m++ {
			if c.month&(1<<m) == 0 {
				continue
			}
			for d := 1; d <= daysIn(m); d++ {
				if c.dom&(1<<d) != 0 {
					possible = true
					break
				}
			}
		}
		if !possible {
			return nil, "never matches: none of the selected months has the selected day"
		}
	}
	return c, ""
}

// daysIn returns the most days month m can have.
func daysIn(m int) int {
	switch m {
	case 2:
		return 29
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func (f cronField) parse(s string) (uint64, string) {
	var bits uint64
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			return 0, "empty list item"
		}
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || !isDigits(stepStr) || n < 1 || n > f.max {
				return 0, fmt.Sprintf("step %q must be a number from 1 to %d", stepStr, f.max)
			}
			step = n
		}
		var lo, hi int
		switch {
		case rng == "*":
			lo, hi = f.min, f.max
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var reason string
			if lo, reason = f.value(a); reason != "" {
				return 0, reason
			}
			if hi, reason = f.value(b); reason != "" {
				return 0, reason
			}
			if lo > hi {
				return 0, fmt.Sprintf("range %q goes backwards", rng)
			}
		default:
			v, reason := f.value(rng)
			if reason != "" {
				return 0, reason
			}
			lo, hi = v, v
			if hasStep {
				hi = f.max
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, ""
}

func (f cronField) value(s string) (int, string) {
	if isDigits(s) {
		n, err := strconv.Atoi(s)
		if err == nil && n >= f.min && n <= f.max {
			return n, ""
		}
		return 0, fmt.Sprintf("%s must be from %d to %d", s, f.min, f.max)
	}
	for i, name := range f.names {
		if strings.EqualFold(s, name) {
			return f.min + i, ""
		}
	}
	if f.names != nil {
		return 0, fmt.Sprintf("%q is not a number from %d to %d or a name (%s–%s)", s, f.min, f.max, f.names[0], f.names[len(f.names)-1])
	}
	return 0, fmt.Sprintf("%q is not a number from %d to %d", s, f.min, f.max)
}

// String returns the expression as written.
func (c *Cron) String() string { return c.expr }

// Next returns the first time strictly after after (at a whole minute, in
// after's location) that matches the schedule, or the zero Time if there is
// none within ten years. Across daylight-saving changes, times that do not
// exist on the clock are skipped and repeated ones match once.
func (c *Cron) Next(after time.Time) time.Time {
	t := after.Add(time.Minute - time.Duration(after.Second())*time.Second - time.Duration(after.Nanosecond()))
	limit := after.AddDate(10, 0, 0)
	loc := after.Location()
	for t.Before(limit) {
		prev := t
		switch {
		case c.month&(1<<uint(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
		case !c.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		case c.hour&(1<<uint(t.Hour())) == 0:
			t = t.Add(time.Duration(60-t.Minute()) * time.Minute)
		case c.minute&(1<<uint(t.Minute())) == 0:
			t = t.Add(time.Minute)
		case c.repeated(t):
			t = t.Add(time.Minute)
		default:
			return t
		}
		if !t.After(prev) { // a wall-clock jump landed us earlier: step on
			t = prev.Add(time.Minute)
		}
	}
	return time.Time{}
}

// repeated reports whether t's wall-clock time already happened earlier
// (the second pass through the hour a daylight-saving change repeats).
func (c *Cron) repeated(t time.Time) bool {
	y, mo, d := t.Date()
	h, mi := t.Hour(), t.Minute()
	for _, back := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		e := t.Add(-back)
		ey, emo, ed := e.Date()
		if ey == y && emo == mo && ed == d && e.Hour() == h && e.Minute() == mi {
			return true
		}
	}
	return false
}

func (c *Cron) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<uint(t.Day())) != 0
	dow := c.dow&(1<<uint(t.Weekday())) != 0
	if c.domAny || c.dowAny {
		return dom && dow
	}
	return dom || dow
}
