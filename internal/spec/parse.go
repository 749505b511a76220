package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxSize is the largest spec Parse accepts, in bytes.
const MaxSize = 1 << 20

// Parse parses, defaults and validates a spec. file names the spec in
// error messages (and is kept in Spec.File).
//
// Every problem found is reported, sorted by position: one as an *Error,
// several as an ErrorList. Either matches errors.Is(err, ErrInvalid), and
// errors.As(err, &list) with list an ErrorList works for both.
func Parse(file string, data []byte) (s *Spec, err error) {
	return ParseFor(file, data, "")
}

// ParseFor is Parse for a given runtime ("" = the spec's own): `moorage
// deploy --runtime docker` parses the spec as if it said `runtime: docker`,
// so docker defaults (port, Dockerfile) and rules apply.
func ParseFor(file string, data []byte, runtime string) (s *Spec, err error) {
	defer func() {
		// The YAML library or this package should never panic; if one
		// does, report it as an invalid spec rather than crash the server.
		if r := recover(); r != nil {
			s, err = nil, &Error{File: file, Msg: fmt.Sprintf("internal error while parsing (please report this): %v", r)}
		}
	}()
	if len(data) > MaxSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("is %d bytes; a spec may be at most %d bytes (1 MiB)", len(data), MaxSize)}
	}
	d := newDecoder(file)
	root := d.document(data)
	if root == nil {
		return nil, d.result()
	}
	d.root = root
	d.budget = visitBudget(countNodes(root))
	s = d.spec(root)
	if runtime != "" && s != nil {
		s.Runtime = runtime
		d.override = true
	}
	if !d.bad[""] {
		d.applyDefaults(s)
		d.validate(s)
	}
	if err := d.result(); err != nil {
		return nil, err
	}
	return s, nil
}

// ParseFile reads and parses the spec at path.
func ParseFile(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	return Parse(path, data)
}

// Validate checks a normalized spec (one returned by Parse, possibly changed
// since, or read back from JSON) against every rule Parse enforces after
// applying defaults. Errors carry paths but no positions.
func (s *Spec) Validate() error {
	d := newDecoder(s.File)
	d.validate(s)
	return d.result()
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data into its one YAML document, or records why not.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc *yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.syntaxError(err, data)
			return nil
		}
		if emptyDocument(&n) {
			continue
		}
		if doc != nil {
			d.errAt(&n, "", "a second YAML document starts here; moorage.yaml holds exactly one (remove the \"---\" separator and what follows)")
			return nil
		}
		doc = &n
	}
	if doc == nil {
		d.errs = append(d.errs, &Error{File: d.file, Msg: "is empty; a spec needs at least app: and services:, e.g.\n\n" +
			"  app: myapp\n  services:\n    web:\n      command: ./server --port $PORT\n"})
		return nil
	}
	if doc.Kind == yaml.DocumentNode {
		return doc.Content[0]
	}
	return doc
}

func emptyDocument(n *yaml.Node) bool {
	if n.Kind != yaml.DocumentNode {
		return false
	}
	if len(n.Content) == 0 {
		return true
	}
	c := n.Content[0]
	return c.Kind == yaml.ScalarNode && c.ShortTag() == "!!null" && c.Value == ""
}

// syntaxError records a YAML syntax error (which has a line but no column).
func (d *decoder) syntaxError(err error, data []byte) {
	msg := err.Error()
	e := &Error{File: d.file}
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if parserError(msg) {
		// The YAML parser (unlike its scanner) reports 0-based lines, of
		// where the enclosing mapping or list starts.
		e.Line++
		msg += " (in the mapping or list that starts on this line: check its indentation and brackets)"
	}
	e.Msg = "invalid YAML: " + msg
	if e.Line > 0 && bytes.ContainsRune(lineOf(data, e.Line), '\t') {
		e.Msg += " (this line contains a tab: YAML indents with spaces only)"
	} else if e.Line == 0 && bytes.ContainsRune(data, '\t') && strings.Contains(msg, "cannot start any token") {
		e.Msg += " (the file contains a tab: YAML indents with spaces only)"
	}
	d.errs = append(d.errs, e)
}

// parserError reports whether msg comes from the YAML parser (not its
// scanner).
func parserError(msg string) bool {
	for _, p := range []string{"did not find expected", "found undefined tag handle", "found duplicate %", "found incompatible YAML document"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// lineOf returns the 1-based line n of data (or nil).
func lineOf(data []byte, n int) []byte {
	for i := 1; len(data) > 0; i++ {
		line, rest, _ := bytes.Cut(data, []byte{'\n'})
		if i == n {
			return line
		}
		data = rest
	}
	return nil
}
