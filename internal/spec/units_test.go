package spec

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0":      0,
		"0s":     0,
		"500ms":  500 * time.Millisecond,
		"30s":    30 * time.Second,
		"10m":    10 * time.Minute,
		"1h30m":  90 * time.Minute,
		"1.5h":   90 * time.Minute,
		"2d":     48 * time.Hour,
		"1d12h":  36 * time.Hour,
		" 5s ":   5 * time.Second,
		"100us":  100 * time.Microsecond,
		"1h0m0s": time.Hour,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"":                      "empty",
		"30":                    `add a unit, e.g. "30s"`,
		"1.5":                   "add a unit",
		"-5s":                   "must not be negative",
		"5 s":                   "write a number and a unit",
		"soon":                  "write a number and a unit",
		"1h30":                  "every number needs a unit",
		"1.5d":                  "days must be a whole number",
		"d":                     "days must be a whole number",
		"1d-5h":                 "write a number and a unit",
		"5x":                    "write a number and a unit",
		"99999999999999999999h": "too large",
		"999999d":               "too large",
		"106751d23h47m16s":      "",
		"106751d23h47m17s":      "too large",
	} {
		_, err := ParseDuration(in)
		if msg == "" {
			if err != nil {
				t.Errorf("ParseDuration(%q) = %v", in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseDuration(%q) error = %v; want %q", in, err, msg)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0":                   0,
		"100":                 100,
		"100B":                100,
		"512K":                512 << 10,
		"512k":                512 << 10,
		"40M":                 40 << 20,
		"40MB":                40 << 20,
		"40mib":               40 << 20,
		"1G":                  1 << 30,
		"1.5G":                3 << 29,
		"0.5K":                512,
		".5K":                 512,
		"2T":                  2 << 40,
		"1 G":                 1 << 30,
		"9223372036854775807": 1<<63 - 1,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"":                     "write a byte count",
		"-1M":                  "must not be negative",
		"1.5":                  "whole number",
		"40Q":                  `unknown unit "Q"`,
		"inf":                  "write a byte count",
		"NaN":                  "write a byte count",
		"1e3":                  "write a byte count",
		"9223372036854775808":  "too large",
		"8388608T":             "too large",
		"9999999999999999999G": "too large",
		"1..5G":                "write a byte count",
	} {
		_, err := ParseSize(in)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseSize(%q) error = %v; want %q", in, err, msg)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"SIGTERM":  syscall.SIGTERM,
		"TERM":     syscall.SIGTERM,
		"term":     syscall.SIGTERM,
		"sigquit":  syscall.SIGQUIT,
		"15":       syscall.SIGTERM,
		"9":        syscall.SIGKILL,
		"USR1":     syscall.SIGUSR1,
		"SIGWINCH": syscall.SIGWINCH,
	} {
		got, err := ParseSignal(in)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "SIG", "TERN", "0", "99", "-1", "1.5", "SIGRTMIN"} {
		if _, err := ParseSignal(in); err == nil || !strings.Contains(err.Error(), "SIGTERM") {
			t.Errorf("ParseSignal(%q) error = %v", in, err)
		}
	}
	if s := Signal(syscall.SIGTERM).String(); s != "SIGTERM" {
		t.Errorf("String = %q", s)
	}
}
