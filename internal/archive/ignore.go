// Package archive packs an app directory into the tar stream `moorage
// deploy` uploads, honouring .moorageignore (or .dockerignore), and unpacks
// it on the server without letting any entry escape the target directory.
package archive

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// AlwaysIgnored are never uploaded.
var AlwaysIgnored = []string{".git", ".moorage"}

// Ignore decides which paths of an app directory are not uploaded. Its
// patterns follow .dockerignore: one per line, relative to the directory,
// `#` starts a comment, `*` and `?` match within a path element, `**`
// matches any number of elements, a leading `!` re-includes what an earlier
// pattern excluded, and a pattern that matches a directory excludes
// everything below it.
type Ignore struct {
	rules []rule
	File  string // the file the patterns came from ("" = none)
}

type rule struct {
	pattern string
	negate  bool
}

// LoadIgnore reads DIR/.moorageignore, else DIR/.dockerignore.
func LoadIgnore(dir string) (*Ignore, error) {
	ig := &Ignore{}
	for _, name := range []string{".moorageignore", ".dockerignore"} {
		f, err := os.Open(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		defer f.Close()
		ig.File = name
		sc := bufio.NewScanner(f)
		line := 0
		for sc.Scan() {
			line++
			if err := ig.Add(sc.Text()); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		break
	}
	return ig, nil
}

// Add adds one pattern line.
func (ig *Ignore) Add(line string) error {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return nil
	}
	r := rule{}
	if strings.HasPrefix(line, "!") {
		r.negate = true
		line = strings.TrimSpace(line[1:])
	}
	p := path.Clean(strings.TrimPrefix(filepath.ToSlash(line), "/"))
	if p == "." || p == "" {
		return nil
	}
	// Validate the pattern once so a typo is reported, not ignored.
	if _, err := path.Match(strings.ReplaceAll(p, "**", "*"), "x"); err != nil {
		return fmt.Errorf("bad pattern %q: %w", line, err)
	}
	r.pattern = p
	ig.rules = append(ig.rules, r)
	return nil
}

// Match reports whether rel (a slash-separated path relative to the app
// directory) is ignored.
func (ig *Ignore) Match(rel string) bool {
	rel = path.Clean(filepath.ToSlash(rel))
	first := strings.SplitN(rel, "/", 2)[0]
	for _, a := range AlwaysIgnored {
		if first == a {
			return true
		}
	}
	ignored := false
	for _, r := range ig.rules {
		if r.negate == ignored && matchAny(r.pattern, rel) {
			ignored = !r.negate
		}
	}
	return ignored
}

// matchAny matches pattern against rel or any of its parent directories.
func matchAny(pattern, rel string) bool {
	for p := rel; p != "." && p != "/" && p != ""; p = path.Dir(p) {
		if match(strings.Split(pattern, "/"), strings.Split(p, "/")) {
			return true
		}
	}
	return false
}

// match matches path elements, with "**" spanning any number of them.
func match(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if match(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
