package spec

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every error Parse and Validate
// return for a spec that is not valid.
var ErrInvalid = errors.New("invalid spec")

// Error is one problem in a spec, with its position.
//
// Its text is "file:line:column: path: message", for example
//
//	moorage.yaml:12:5: services.web.replicas: must be a whole number ≥ 0 (got "two")
//
// Line and Column are 1-based; 0 when unknown (YAML syntax errors have no
// column; Validate has no positions at all), and are then left out.
type Error struct {
	File   string
	Line   int
	Column int
	Path   string // dotted path of the offending key, e.g. services.web.replicas; "" for the whole file
	Msg    string
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// As lets errors.As fill an *ErrorList from a single *Error, so callers
// can always ask for the list.
func (e *Error) As(target any) bool {
	if l, ok := target.(*ErrorList); ok {
		*l = ErrorList{e}
		return true
	}
	return false
}

// ErrorList is several errors, sorted by position. Parse returns it when it
// finds more than one problem.
type ErrorList []*Error

// Error implements error: one error per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Is reports whether target is ErrInvalid.
func (l ErrorList) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the errors, so errors.As finds an *Error in the list.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// asError returns nil, the single error, or the list.
func (l ErrorList) asError() error {
	switch len(l) {
	case 0:
		return nil
	case 1:
		return l[0]
	default:
		return l
	}
}
