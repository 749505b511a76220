package spec

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var (
	yamlBlockRe = regexp.MustCompile("(?s)```yaml\n(.*?)```")
	hasServices = regexp.MustCompile(`(?m)^services:`)
	hasAppKeyRe = regexp.MustCompile(`(?m)^app:`)
	codeBlockRe = regexp.MustCompile("(?s)```\n(.*?)```")
)

// TestDocsExamples parses every complete example in docs/spec.md, so the
// reference cannot drift from the parser.
func TestDocsExamples(t *testing.T) {
	data, err := os.ReadFile("../../docs/spec.md")
	if os.IsNotExist(err) {
		t.Skip("docs/spec.md not found")
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range yamlBlockRe.FindAllStringSubmatch(string(data), -1) {
		src := m[1]
		if !hasServices.MatchString(src) {
			continue // a fragment
		}
		if !hasAppKeyRe.MatchString(src) {
			src = "app: docs\n" + src
		}
		n++
		s, err := Parse("spec.md", []byte(src))
		if err != nil {
			t.Errorf("example %d does not parse:\n%s\n%v", n, src, err)
			continue
		}
		if w := s.Warnings(); len(w) > 0 {
			t.Errorf("example %d has warnings: %q", n, w)
		}
	}
	if n < 3 {
		t.Errorf("found only %d examples", n)
	}

	// The first two blocks of the Errors section: a spec and its errors.
	_, errorsSection, _ := strings.Cut(string(data), "\n## Errors\n")
	blocks := codeBlockRe.FindAllStringSubmatch(errorsSection, 2)
	if len(blocks) != 2 {
		t.Fatal("Errors section: want a spec and its errors")
	}
	_, err = Parse("moorage.yaml", []byte(blocks[0][1]))
	if err == nil || err.Error() != strings.TrimSpace(blocks[1][1]) {
		t.Errorf("Errors section is out of date; the spec gives:\n%v", err)
	}
}
