package cli

import (
	"testing"
	"time"
)

func TestLogTime(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.Local)
	today := time.Date(2026, 3, 14, 0, 0, 1, 5e6, time.Local)
	yesterday := time.Date(2026, 3, 13, 23, 59, 59, 0, time.Local)
	for _, tt := range []struct {
		t    time.Time
		full bool
		want string
	}{
		{today, false, "00:00:01.005"},
		{yesterday, false, "2026-03-13 23:59:59.000"},
		{yesterday.AddDate(-1, 0, 0), false, "2025-03-13 23:59:59.000"},
		{today, true, today.Format("2006-01-02T15:04:05.000Z07:00")},
	} {
		if got := logTime(tt.t.UTC(), now, tt.full); got != tt.want {
			t.Errorf("logTime(%s, full=%v) = %q, want %q", tt.t, tt.full, got, tt.want)
		}
	}
}
