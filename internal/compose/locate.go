package compose

import (
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// sources holds the raw YAML of the compose files, in the order compose
// merges them, only to point messages at a file and line: the meaning of
// the files always comes from compose-go.
type sources struct {
	files []string
	docs  []*yaml.Node // nil for a file that could not be read as YAML
}

func readSources(files []string) *sources {
	s := &sources{files: files}
	for _, f := range files {
		var doc yaml.Node
		data, err := os.ReadFile(f)
		if err != nil || yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
			s.docs = append(s.docs, nil)
			continue
		}
		s.docs = append(s.docs, doc.Content[0])
	}
	return s
}

// child returns the value under key in mapping n.
func child(n *yaml.Node, key string) (k, v *yaml.Node) {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// Pos is where a key is written.
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

// find returns where the dotted path (services.web.ports) is written, in
// the last file that writes it (the one whose value wins); for a path none
// writes, the closest parent that is written.
func (s *sources) find(path string) Pos {
	parts := strings.Split(path, ".")
	for len(parts) > 0 {
		for i := len(s.docs) - 1; i >= 0; i-- {
			n := s.docs[i]
			var k *yaml.Node
			for _, p := range parts {
				if k, n = child(n, p); n == nil {
					break
				}
			}
			if n != nil && k != nil {
				return Pos{File: s.files[i], Line: k.Line}
			}
		}
		parts = parts[:len(parts)-1]
	}
	if len(s.files) > 0 {
		return Pos{File: s.files[0]}
	}
	return Pos{}
}

// keys returns the keys written under path in any file, each once, in the
// order first seen.
func (s *sources) keys(path string) []string {
	seen := map[string]bool{}
	var out []string
	for _, doc := range s.docs {
		n := doc
		for _, p := range strings.Split(path, ".") {
			if _, n = child(n, p); n == nil {
				break
			}
		}
		for n != nil && n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n == nil || n.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if k == "<<" {
				// a merge key: its keys count as written here
				for _, m := range mergeKeys(n.Content[i+1]) {
					if !seen[m] {
						seen[m] = true
						out = append(out, m)
					}
				}
				continue
			}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

func mergeKeys(n *yaml.Node) []string {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	var out []string
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, n.Content[i].Value)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			out = append(out, mergeKeys(c)...)
		}
	}
	return out
}
