package spec

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

var sizeRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?|\.[0-9]+) ?([A-Za-z]*)$`)

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}

// ParseSize parses a size in bytes: a plain byte count ("100") or a number
// with a 1024-based unit: K, M, G or T, optionally followed by B or iB, in
// any case ("512K", "40M", "40MB", "1.5G", "2GiB"). Fractions are allowed
// with a unit and rounded down to whole bytes.
func ParseSize(s string) (int64, error) {
	n, reason := parseSize(s)
	if reason != "" {
		return 0, fmt.Errorf("invalid size %q: %s", s, reason)
	}
	return n, nil
}

func parseSize(s string) (int64, string) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		return 0, "must not be negative"
	}
	m := sizeRe.FindStringSubmatch(s)
	if m == nil {
		return 0, `write a byte count or a number with a unit (K, M, G, T), e.g. "512K", "40M" or "1.5G"`
	}
	num, unit := m[1], strings.ToLower(m[2])
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Sprintf("unknown unit %q; use K, M, G or T (1024-based), e.g. \"40M\"", m[2])
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/mult {
			return 0, "too large"
		}
		return n * mult, ""
	}
	if mult == 1 {
		return 0, "a byte count must be a whole number"
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, "not a number"
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, "too large"
	}
	return int64(v), ""
}

// formatSize writes n with the largest unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n != 0 && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}
