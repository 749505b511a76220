package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a human duration: a sequence of numbers with units,
// like "500ms", "30s", "10m", "1h30m" or "2d" (d is 24h; days must come
// first and be a whole number: "1d12h"). Go's units ns, us (µs), ms, s, m
// and h are accepted. "0" alone is zero; any other bare number is an error
// that asks for a unit. Negative durations are errors.
func ParseDuration(s string) (time.Duration, error) {
	d, reason := parseDuration(s)
	if reason != "" {
		return 0, fmt.Errorf("invalid duration %q: %s", s, reason)
	}
	return d, nil
}

// parseDuration returns the duration or why s is not one.
func parseDuration(s string) (time.Duration, string) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return 0, `empty; write a number and a unit, e.g. "30s"`
	case s == "0":
		return 0, ""
	case s[0] == '-':
		return 0, "must not be negative"
	}
	if isDecimal(s) {
		return 0, fmt.Sprintf(`add a unit, e.g. "%ss" or "%sm"`, s, s)
	}
	const usage = `write a number and a unit (ms, s, m, h or d), e.g. "30s", "10m" or "1h30m"`
	var total time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		days := s[:i]
		if days == "" || !isDigits(days) {
			return 0, "days must be a whole number, e.g. \"2d\" or \"1d12h\""
		}
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, "too large"
		}
		total = time.Duration(n) * 24 * time.Hour
		rest = s[i+1:]
	}
	if rest == "" {
		return total, ""
	}
	if c := rest[0]; c != '.' && (c < '0' || c > '9') {
		return 0, usage
	}
	d, err := time.ParseDuration(rest)
	if err != nil {
		if strings.Contains(err.Error(), "missing unit") {
			return 0, "every number needs a unit, e.g. \"1h30m\""
		}
		if strings.Contains(err.Error(), "invalid duration") && isTooLarge(rest) {
			return 0, "too large"
		}
		return 0, usage
	}
	if d > math.MaxInt64-total {
		return 0, "too large"
	}
	return total + d, ""
}

// isTooLarge reports whether a duration that time.ParseDuration refused
// is well formed but overflows.
func isTooLarge(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789.nsuµmh", c) {
			return false
		}
	}
	return true
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isDecimal reports whether s is digits with at most one '.' (and a digit).
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "+")
	i, f, _ := strings.Cut(s, ".")
	return (i != "" || f != "") && (i == "" || isDigits(i)) && (f == "" || isDigits(f))
}

// FormatDuration writes d the way a spec would (and plans print it): "30s", "10m", "1h30m".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
