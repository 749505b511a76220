package spec

import (
	"fmt"
	"math"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// maxErrors bounds what Parse reports.
const maxErrors = 100

// visitBudget bounds the work of walking a document of n nodes, aliases
// included: an "alias bomb" expands exponentially, while walking a
// document without aliases visits each node at most about twice.
func visitBudget(n int) int { return 4*n + 100_000 }

// countNodes counts the nodes of the tree under root, each once.
func countNodes(root *yaml.Node) int {
	n := 0
	stack := []*yaml.Node{root}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n++
		stack = append(stack, x.Content...)
	}
	return n
}

// decoder walks a YAML node tree into a Spec, recording errors with
// positions and where every path was found (for later errors, and to know
// which keys the spec sets).
type decoder struct {
	file     string
	root     *yaml.Node
	errs     ErrorList
	bad      map[string]bool       // paths with an error: later checks skip them and what is under them
	vals     map[string]*yaml.Node // value node of every path present
	keys     map[string]*yaml.Node // key node of every path present
	visits   int                   // nodes walked so far
	budget   int                   // most nodes to walk
	override bool                  // the runtime was overridden by ParseFor

	dropped int // errors not recorded, past 10*maxErrors

	merging map[*yaml.Node]bool // mappings being merged (<<), to catch cycles
}

func newDecoder(file string) *decoder {
	return &decoder{
		file: file,
		bad:  map[string]bool{},
		vals: map[string]*yaml.Node{},
		keys: map[string]*yaml.Node{},

		merging: map[*yaml.Node]bool{},
	}
}

// given reports whether the spec sets path.
func (d *decoder) given(p string) bool { return d.vals[p] != nil }

// result returns the errors found, sorted, de-duplicated and capped.
func (d *decoder) result() error {
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	type key struct {
		line, col int
		msg       string
	}
	seen := map[key]bool{}
	out := ErrorList{}
	for _, e := range d.errs {
		k := key{e.Line, e.Column, e.Msg}
		if e.Line > 0 && seen[k] {
			continue // the same node reached twice through an alias
		}
		seen[k] = true
		out = append(out, e)
	}
	more := d.dropped
	if len(out) > maxErrors {
		more += len(out) - maxErrors
		out = out[:maxErrors]
	}
	if more > 0 {
		out = append(out, &Error{File: d.file, Msg: fmt.Sprintf("and %d more errors", more)})
	}
	return out.asError()
}

// errAt records an error at node n for path, and marks path bad: checks of
// path and of what is under it are skipped from then on.
func (d *decoder) errAt(n *yaml.Node, p string, format string, args ...any) {
	d.bad[p] = true
	d.report(n, p, format, args...)
}

// report records an error at node n for path.
func (d *decoder) report(n *yaml.Node, p string, format string, args ...any) {
	if len(d.errs) >= 10*maxErrors {
		d.dropped++
		return
	}
	e := &Error{File: d.file, Path: p, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// fail records an error for path at the best known position: the key (when
// onKey) or value of path, else of its nearest recorded parent.
func (d *decoder) fail(p string, onKey bool, format string, args ...any) {
	for q := p; ; q = parentPath(q) {
		if d.bad[q] {
			return
		}
		if q == "" {
			break
		}
	}
	var n *yaml.Node
	for q := p; n == nil; q = parentPath(q) {
		if onKey || q != p {
			n = d.keys[q]
		}
		if n == nil {
			n = d.vals[q]
		}
		if q == "" {
			if n == nil {
				n = d.root
			}
			break
		}
	}
	d.errAt(n, p, format, args...)
}

// parentPath returns the path one level up: services.web.port →
// services.web, release[2] → release, app → "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func join(p, key string) string {
	if p == "" {
		return key
	}
	return p + "." + key
}

func index(p string, i int) string { return p + "[" + strconv.Itoa(i) + "]" }

// resolve follows aliases and counts the visit; nil when the walk must stop.
func (d *decoder) resolve(n *yaml.Node, p string) *yaml.Node {
	d.visits++
	if d.visits == d.budget {
		d.errAt(n, p, "the document is too large once its aliases are expanded")
	}
	if d.visits >= d.budget {
		return nil
	}
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if n.Alias == nil || i > 100 {
			d.errAt(n, p, "alias %q cannot be resolved", n.Value)
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what n is, for "(got ...)".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return quoteValue(n.Value)
	}
	return "something else"
}

// quoteValue quotes v for a message, shortened when long.
func quoteValue(v string) string {
	if utf8.RuneCountInString(v) > 60 {
		r := []rune(v)
		v = string(r[:57]) + "..."
	}
	return strconv.Quote(v)
}

type pair struct {
	key  string
	k, v *yaml.Node
}

// pairs returns the entries of mapping n: its own, then those merged in with
// "<<" that it does not override. Duplicate keys are errors.
func (d *decoder) pairs(n *yaml.Node, p string) []pair {
	if d.merging[n] {
		d.errAt(n, p, "merge (<<) includes itself")
		return nil
	}
	d.merging[n] = true
	defer delete(d.merging, n)
	var own, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(n.Content[i], p)
		v := n.Content[i+1]
		if k == nil {
			return own
		}
		if k.Kind != yaml.ScalarNode {
			d.errAt(k, p, "keys must be plain strings (got %s)", describe(k))
			continue
		}
		if k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge") {
			merged = append(merged, d.merge(v, p)...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.report(k, join(p, k.Value), "duplicate key %q (first set on line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, pair{k.Value, k, v})
	}
	for _, m := range merged {
		if seen[m.key] == nil {
			seen[m.key] = m.k
			own = append(own, m)
		}
	}
	return own
}

// merge returns the entries a "<<" value brings in.
func (d *decoder) merge(v *yaml.Node, p string) []pair {
	v = d.resolve(v, p)
	if v == nil {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, p)
	case yaml.SequenceNode:
		var out []pair
		have := map[string]bool{}
		for _, item := range v.Content {
			m := d.resolve(item, p)
			if m == nil {
				return out
			}
			if m.Kind != yaml.MappingNode {
				d.errAt(m, p, "merge (<<) takes a mapping or a list of mappings (got %s)", describe(m))
				continue
			}
			for _, x := range d.pairs(m, p) {
				if !have[x.key] { // earlier mappings win
					have[x.key] = true
					out = append(out, x)
				}
			}
		}
		return out
	}
	d.errAt(v, p, "merge (<<) takes a mapping or a list of mappings (got %s)", describe(v))
	return nil
}

// mapping walks mapping n, calling fn for each entry whose key is in keys,
// and reporting the others. A null value counts as an empty mapping.
// Returns false when n is not a mapping.
func (d *decoder) mapping(n *yaml.Node, p string, keys []string, example string, fn func(key string, k, v *yaml.Node)) bool {
	n = d.resolve(n, p)
	if n == nil {
		return false
	}
	if isNull(n) {
		return true
	}
	if n.Kind != yaml.MappingNode {
		d.errAt(n, p, "must be a mapping, e.g. %s (got %s)", example, describe(n))
		return false
	}
	for _, e := range d.pairs(n, p) {
		if keys != nil && !contains(keys, e.key) {
			if p == "" && strings.HasPrefix(e.key, "x-") {
				continue // extension fields, e.g. to hold YAML anchors
			}
			d.unknownKey(e.k, p, e.key, keys)
			continue
		}
		q := join(p, e.key)
		v := d.resolve(e.v, q)
		if v == nil {
			return false
		}
		d.keys[q], d.vals[q] = e.k, v
		fn(e.key, e.k, v)
	}
	return true
}

// names walks a mapping of names (services, accessories, volumes, env...).
func (d *decoder) names(n *yaml.Node, p, example string, fn func(name string, k, v *yaml.Node)) bool {
	return d.mapping(n, p, nil, example, fn)
}

// hints for keys that belong elsewhere.
var misplacedHints = map[string]string{
	"services.image":      "image: is set once at the top level: every service runs the app's one artifact",
	"services.volumes":    "declare volumes at the top level, with services: [...] to choose who mounts them",
	"services.build":      "build: is set once at the top level: every service runs the app's one artifact",
	"services.depends_on": "services start together and accessories start first; there is no depends_on",
}

func (d *decoder) unknownKey(k *yaml.Node, p, key string, valid []string) {
	q := join(p, key)
	d.bad[q] = true
	if len(d.errs) >= 10*maxErrors {
		d.dropped++
		return
	}
	ctx := p
	if strings.HasPrefix(p, "services.") && strings.Count(p, ".") == 1 {
		ctx = "services"
	}
	msg := fmt.Sprintf("unknown key %q", key)
	if h, ok := misplacedHints[ctx+"."+key]; ok {
		msg += "; " + h
	} else if s := suggest(key, valid); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	where := "here"
	if p != "" {
		where = "in " + p
	}
	msg += fmt.Sprintf("; valid keys %s are: %s", where, strings.Join(valid, ", "))
	d.errAt(k, q, "%s", msg)
}

// scalar returns the text of scalar n, or records a type error; want is
// "a string, e.g. app: myapp".
func (d *decoder) scalar(n *yaml.Node, p, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errAt(n, p, "must be %s (got %s)", want, describe(n))
		return "", false
	}
	if isNull(n) {
		d.errAt(n, p, "needs a value: %s", want)
		return "", false
	}
	return d.checkText(n, p)
}

// checkText rejects text no process or file can use.
func (d *decoder) checkText(n *yaml.Node, p string) (string, bool) {
	switch {
	case !utf8.ValidString(n.Value):
		d.errAt(n, p, "is not valid UTF-8")
		return "", false
	case strings.IndexByte(n.Value, 0) >= 0:
		d.errAt(n, p, "contains a NUL character")
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(n *yaml.Node, p, example string) string {
	s, _ := d.scalar(n, p, "a string, e.g. "+example)
	return s
}

var intRe = regexp.MustCompile(`^[-+]?[0-9]+$`)

// int parses a whole number; what is e.g. "a whole number ≥ 0".
func (d *decoder) int(n *yaml.Node, p, what, example string) int {
	s, ok := d.scalar(n, p, what+", e.g. "+example)
	if !ok {
		return 0
	}
	if !intRe.MatchString(s) {
		d.errAt(n, p, "must be %s (got %s)", what, quoteValue(s))
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		d.errAt(n, p, "must be %s (got %s, which is too large)", what, quoteValue(s))
		return 0
	}
	return int(v)
}

func (d *decoder) bool(n *yaml.Node, p, example string) bool {
	s, ok := d.scalar(n, p, "true or false, e.g. "+example)
	if !ok {
		return false
	}
	switch s {
	case "true", "True", "TRUE":
		return true
	case "false", "False", "FALSE":
		return false
	}
	d.errAt(n, p, "must be true or false (got %s)", quoteValue(s))
	return false
}

func (d *decoder) duration(n *yaml.Node, p, example string) time.Duration {
	const what = `a duration like "30s", "10m" or "1h30m"`
	s, ok := d.scalar(n, p, what+", e.g. "+example)
	if !ok {
		return 0
	}
	v, reason := parseDuration(s)
	if reason != "" {
		d.errAt(n, p, "must be %s (got %s: %s)", what, quoteValue(s), reason)
	}
	return v
}

func (d *decoder) size(n *yaml.Node, p, example string) int64 {
	const what = `a size like "512K", "40M" or "1G", or a byte count`
	s, ok := d.scalar(n, p, what+", e.g. "+example)
	if !ok {
		return 0
	}
	v, reason := parseSize(s)
	if reason != "" {
		d.errAt(n, p, "must be %s (got %s: %s)", what, quoteValue(s), reason)
	}
	return v
}

var floatRe = regexp.MustCompile(`^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$`)

func (d *decoder) float(n *yaml.Node, p, what, example string) float64 {
	s, ok := d.scalar(n, p, what+", e.g. "+example)
	if !ok {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if !floatRe.MatchString(s) || err != nil || math.IsInf(v, 0) {
		d.errAt(n, p, "must be %s (got %s)", what, quoteValue(s))
		return 0
	}
	return v
}

func (d *decoder) signal(n *yaml.Node, p, example string) Signal {
	const what = "a signal like SIGTERM, SIGINT or SIGQUIT (or its number)"
	s, ok := d.scalar(n, p, what+", e.g. "+example)
	if !ok {
		return 0
	}
	v, reason := parseSignal(s)
	if reason != "" {
		d.errAt(n, p, "must be %s (got %s)", what, quoteValue(s))
	}
	return Signal(v)
}

// absPath reads an absolute path, cleaned; anything else is kept as
// written for validation to report.
func (d *decoder) absPath(n *yaml.Node, p, example string) string {
	s := d.str(n, p, example)
	if path.IsAbs(s) {
		return path.Clean(s)
	}
	return s
}

// strList reads a list of strings (nil when empty).
func (d *decoder) strList(n *yaml.Node, p, example string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errAt(n, p, "must be a list, e.g. %s (got %s)", example, describe(n))
		return nil
	}
	var out []string
	for i, item := range n.Content {
		q := index(p, i)
		item = d.resolve(item, q)
		if item == nil {
			return out
		}
		d.vals[q] = item
		s, _ := d.scalar(item, q, "a string, e.g. "+example)
		out = append(out, s) // "" on error: keeps indexes in step for later checks

	}
	return out
}

// env reads a mapping of variables; values are any scalar, as written.
func (d *decoder) env(n *yaml.Node, p string) map[string]string {
	out := map[string]string{}
	d.names(n, p, "env: {LOG_LEVEL: info}", func(name string, k, v *yaml.Node) {
		q := join(p, name)
		switch {
		case v.Kind != yaml.ScalarNode:
			d.errAt(v, q, "must be a string, number or boolean, e.g. %s: \"value\" (got %s); to pass structured data, quote it as one string", name, describe(v))
		case isNull(v) && v.Value == "":
			out[name] = ""
		default:
			if s, ok := d.checkText(v, q); ok {
				out[name] = s
			}
		}
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// command reads a command: a string split like a shell would, or a list.
func (d *decoder) command(n *yaml.Node, p, example string) Command {
	want := "a command: a string or a list of strings, e.g. " + example
	switch {
	case isNull(n):
		d.errAt(n, p, "is empty; it needs %s", want)
		return nil
	case n.Kind == yaml.ScalarNode:
		s, ok := d.checkText(n, p)
		if !ok {
			return nil
		}
		args, op, err := splitCommand(s)
		switch {
		case err != nil:
			d.errAt(n, p, "cannot be split into words: %v", err)
			return nil
		case len(args) == 0:
			d.errAt(n, p, "is empty; it needs %s", want)
			return nil
		case op != "":
			d.errAt(n, p, "contains the shell operator %q, but commands run without a shell; to use one, write it: sh -c '...' (or quote the %q if it is an argument)", op, op)
			return nil
		case args[0] == "":
			d.errAt(n, p, "the program to run (the first word) is empty")
			return nil
		}
		if k, _, ok := strings.Cut(args[0], "="); ok && envKeyRe.MatchString(k) {
			d.errAt(n, p, "starts with the assignment %q, but commands run without a shell; set %s under env:, or write env %s ...", args[0], k, args[0])
			return nil
		}
		return args
	case n.Kind == yaml.SequenceNode:
		var args Command
		for i, item := range n.Content {
			q := index(p, i)
			item = d.resolve(item, q)
			if item == nil {
				return nil
			}
			s, ok := d.scalar(item, q, "a string")
			if !ok {
				d.bad[p] = true
				return nil
			}
			args = append(args, s)
		}
		switch {
		case len(args) == 0:
			d.errAt(n, p, "is empty; it needs %s", want)
			return nil
		case args[0] == "":
			d.errAt(n, p, "the program to run (the first item) is empty")
			return nil
		}
		return args
	}
	d.errAt(n, p, "must be %s (got %s)", want, describe(n))
	return nil
}
