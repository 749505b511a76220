package spec

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases must not depend on the host's zoneinfo
)

func TestParseCronErrors(t *testing.T) {
	for expr, msg := range map[string]string{
		"":                  "has 0 fields",
		"0 3 * *":           "has 4 fields; write 5 fields: minute hour day-of-month month day-of-week",
		"0 3 * * * *":       "has 6 fields",
		"60 * * * *":        `minute field "60": 60 must be from 0 to 59`,
		"* 24 * * *":        `hour field "24": 24 must be from 0 to 23`,
		"* * 0 * *":         `day of month field "0": 0 must be from 1 to 31`,
		"* * * 13 *":        `month field "13": 13 must be from 1 to 12`,
		"* * * * 8":         `day of week field "8": 8 must be from 0 to 7`,
		"* * * foo *":       `month field "foo": "foo" is not a number from 1 to 12 or a name (jan–dec)`,
		"* * * * funday":    `"funday" is not a number from 0 to 7 or a name (sun–sat)`,
		"5-1 * * * *":       `range "5-1" goes backwards`,
		"*/0 * * * *":       `step "0" must be a number from 1 to 59`,
		"*/x * * * *":       `step "x"`,
		"1,,2 * * * *":      "empty list item",
		"a-b * * * *":       `"a" is not a number from 0 to 59`,
		"0 0 30 2 *":        "never matches",
		"0 0 31 4,6,9,11 *": "never matches",
		"@fortnightly":      "unknown macro",
		"-1 * * * *":        `"" is not a number`,
	} {
		_, err := ParseCron(expr)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseCron(%q) error = %v; want %q", expr, err, msg)
		}
	}
}

func TestCronNext(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		expr, after, want string
	}{
		{"0 3 * * *", "2024-01-01 10:00:00", "2024-01-02 03:00:00"},
		{"0 3 * * *", "2024-01-01 02:59:30", "2024-01-01 03:00:00"},
		{"0 3 * * *", "2024-01-01 03:00:00", "2024-01-02 03:00:00"}, // strictly after
		{"* * * * *", "2024-01-01 03:00:59", "2024-01-01 03:01:00"},
		{"*/15 9-17 * * mon-fri", "2024-01-06 12:00:00", "2024-01-08 09:00:00"},
		{"*/15 9-17 * * mon-fri", "2024-01-08 17:45:00", "2024-01-09 09:00:00"},
		{"0 0 29 2 *", "2024-03-01 00:00:00", "2028-02-29 00:00:00"},
		{"0 0 1,15 * 1", "2024-01-02 00:00:00", "2024-01-08 00:00:00"}, // day of month OR day of week
		{"0 0 * * 7", "2024-01-01 00:00:00", "2024-01-07 00:00:00"},    // 7 is Sunday
		{"0 12 * jan,jul *", "2024-02-01 00:00:00", "2024-07-01 12:00:00"},
		{"5/20 * * * *", "2024-01-01 00:06:00", "2024-01-01 00:25:00"},
		{"0 0 31 * *", "2024-04-01 00:00:00", "2024-05-31 00:00:00"},
		{"@hourly", "2024-01-01 10:30:00", "2024-01-01 11:00:00"},
		{"@weekly", "2024-01-01 00:00:00", "2024-01-07 00:00:00"},
		{"@yearly", "2024-01-01 00:00:00", "2025-01-01 00:00:00"},
		{"59 23 31 12 *", "2024-12-31 23:59:00", "2025-12-31 23:59:00"},
	}
	for _, tt := range tests {
		c, err := ParseCron(tt.expr)
		if err != nil {
			t.Fatalf("ParseCron(%q): %v", tt.expr, err)
		}
		if got := c.Next(utc(tt.after)); !got.Equal(utc(tt.want)) {
			t.Errorf("%q.Next(%s) = %s, want %s", tt.expr, tt.after, got.Format(time.DateTime), tt.want)
		}
	}
	if c, _ := ParseCron("0 3 * * *"); c.String() != "0 3 * * *" {
		t.Errorf("String = %q", c.String())
	}
}

func TestCronNextDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, ny) }

	// Spring forward: 02:30 does not exist on 2024-03-10 and is skipped.
	c, _ := ParseCron("30 2 * * *")
	if got := c.Next(at(2024, 3, 10, 0, 0)); !got.Equal(at(2024, 3, 11, 2, 30)) {
		t.Errorf("spring forward: %s", got)
	}
	// An hourly job keeps firing every real hour across the gap.
	c, _ = ParseCron("0 * * * *")
	if got := c.Next(at(2024, 3, 10, 1, 30)); got.Sub(at(2024, 3, 10, 1, 30)) != 30*time.Minute || got.Hour() != 3 {
		t.Errorf("hourly across the gap: %s", got)
	}
	// Fall back: 01:30 happens twice on 2024-11-03; the job runs once.
	c, _ = ParseCron("30 1 * * *")
	first := c.Next(at(2024, 11, 3, 0, 0))
	if first.Hour() != 1 || first.Minute() != 30 || first.Day() != 3 {
		t.Fatalf("fall back first: %s", first)
	}
	if got := c.Next(first); got.Day() != 4 || got.Hour() != 1 || got.Minute() != 30 {
		t.Errorf("fall back ran twice: %s after %s", got, first)
	}
	// Every minute keeps going through the repeated hour without stalling.
	c, _ = ParseCron("* * * * *")
	tm := at(2024, 11, 3, 0, 30)
	for i := 0; i < 180; i++ {
		next := c.Next(tm)
		if !next.After(tm) {
			t.Fatalf("Next(%s) = %s went backwards", tm, next)
		}
		tm = next
	}
}
