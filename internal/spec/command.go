package spec

import (
	"errors"
	"fmt"
	"strings"
)

// SplitCommand splits a command string into an argv the way a POSIX shell
// splits words, without a shell: words are separated by spaces, tabs and
// newlines; 'single quotes' keep everything literally; "double quotes" keep
// everything literally except \\ and \" (a backslash before any other
// character stays); outside quotes a backslash escapes the next character
// and a backslash before a newline joins the lines. Quoted and unquoted
// parts of a word join up (a"b c"d is one word). Nothing is expanded or
// globbed: $VAR is expanded later by the runtime, * stays *. Unterminated
// quotes and a trailing backslash are errors.
func SplitCommand(s string) ([]string, error) {
	args, _, err := splitCommand(s)
	return args, err
}

// splitCommand is SplitCommand that also returns the first shell operator
// found outside quotes ("&&", "|", ";", ">", "`", "$(", ...), "" if none.
func splitCommand(s string) (args []string, op string, err error) {
	const (
		plain = iota
		single
		double
	)
	var (
		cur    strings.Builder
		inWord bool
		state  = plain
		opened int
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case single:
			if c == '\'' {
				state = plain
			} else {
				cur.WriteByte(c)
			}
		case double:
			switch {
			case c == '"':
				state = plain
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\\' || s[i+1] == '"'):
				i++
				cur.WriteByte(s[i])
			default:
				cur.WriteByte(c)
			}
		default:
			switch c {
			case ' ', '\t', '\n', '\r':
				if inWord {
					args = append(args, cur.String())
					cur.Reset()
					inWord = false
				}
			case '\'':
				state, opened, inWord = single, i, true
			case '"':
				state, opened, inWord = double, i, true
			case '\\':
				if i+1 >= len(s) {
					return nil, "", errors.New("ends with a backslash (escape it as \\\\ or quote it)")
				}
				i++
				if s[i] == '\n' {
					continue
				}
				cur.WriteByte(s[i])
				inWord = true
			default:
				if op == "" {
					op = shellOp(s, i)
				}
				cur.WriteByte(c)
				inWord = true
			}
		}
	}
	switch state {
	case single:
		return nil, "", fmt.Errorf("unterminated single quote (opened at character %d)", runeIndex(s, opened)+1)
	case double:
		return nil, "", fmt.Errorf("unterminated double quote (opened at character %d)", runeIndex(s, opened)+1)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, op, nil
}

// shellOp returns the shell operator starting at s[i], or "".
func shellOp(s string, i int) string {
	const ops = "|&;<>"
	switch {
	case s[i] == '`':
		return "`"
	case s[i] == '$' && i+1 < len(s) && s[i+1] == '(':
		return "$("
	case strings.IndexByte(ops, s[i]) >= 0:
		j := i
		for j < len(s) && strings.IndexByte(ops, s[j]) >= 0 {
			j++
		}
		return s[i:j]
	}
	return ""
}

// runeIndex converts a byte offset into a character offset.
func runeIndex(s string, byteOff int) int {
	return len([]rune(s[:byteOff]))
}

// String returns the command as one string that SplitCommand turns back
// into the same argv, quoting arguments only where needed.
func (c Command) String() string {
	parts := make([]string, len(c))
	for i, a := range c {
		parts[i] = quoteArg(a)
	}
	return strings.Join(parts, " ")
}

// quoteArg single-quotes a unless it is made of characters that need no
// quoting.
func quoteArg(a string) string {
	if a == "" {
		return "''"
	}
	safe := true
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_@%+=:,./-$", c) >= 0) {
			safe = false
			break
		}
	}
	if safe {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'"'"'`) + "'"
}
