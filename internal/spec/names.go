package spec

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var (
	nameRe   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	envKeyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

const (
	nameRule   = "must be 1 to 63 characters: a lower-case letter, then lower-case letters, digits or '-'"
	envKeyRule = "must start with a letter or '_' and contain only letters, digits and '_'"
)

// checkName returns why name is not a valid app, service, accessory or
// volume name, or "".
func checkName(name string) string {
	if nameRe.MatchString(name) {
		return ""
	}
	if lower := strings.ToLower(name); lower != name && nameRe.MatchString(lower) {
		return fmt.Sprintf("%s (got %q; try %q)", nameRule, name, lower)
	}
	if fixed := strings.ReplaceAll(name, "_", "-"); fixed != name && nameRe.MatchString(fixed) {
		return fmt.Sprintf("%s (got %q; try %q)", nameRule, name, fixed)
	}
	return fmt.Sprintf("%s (got %q)", nameRule, name)
}

// reservedEnv reports whether moorage sets the variable itself.
func reservedEnv(k string) bool {
	return k == "PORT" || strings.HasPrefix(k, "MOORAGE_")
}

// checkEnvKey returns why k cannot be an environment variable name, or "".
func checkEnvKey(k string) string {
	switch {
	case !envKeyRe.MatchString(k):
		return fmt.Sprintf("%s (got %q)", envKeyRule, k)
	case reservedEnv(k):
		return fmt.Sprintf("%q is set by moorage for every instance and cannot be set in the spec", k)
	}
	return ""
}

// keyHints are common keys from other tools, with what to write instead.
var keyHints = map[string]string{
	"environment": "env",
	"cmd":         "command",
	"entrypoint":  "command",
	"ports":       "port",
	"healthcheck": "health",
	"scale":       "replicas",
	"instances":   "replicas",
	"domains":     "hosts",
	"domain":      "hosts",
	"host":        "hosts",
	"hostname":    "hosts",
	"mem":         "memory",
	"mem_limit":   "memory",
	"cpu":         "cpus",
	"signal":      "stop_signal",
	"name":        "app",
}

// suggest returns the valid key closest to key, or "".
func suggest(key string, valid []string) string {
	norm := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	if h, ok := keyHints[norm]; ok && contains(valid, h) {
		return h
	}
	best, bestDist := "", 1<<30
	for _, v := range valid {
		d := levenshtein(norm, v)
		if d < bestDist {
			best, bestDist = v, d
		}
	}
	if bestDist <= 2 || bestDist <= len(norm)/3 {
		return best
	}
	if len(norm) >= 3 {
		for _, v := range valid {
			if strings.HasPrefix(v, norm) {
				return v
			}
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// levenshtein is the edit distance of a and b (bytes; keys are ASCII).
func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// quoteList formats names as "a", "b" or "c".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	switch len(q) {
	case 0:
		return "none"
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
