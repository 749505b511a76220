package swarm

import (
	"strings"
	"testing"
)

func TestVolumeNode(t *testing.T) {
	for _, c := range []struct {
		name    string
		copies  []volumeCopy
		unknown []string
		want    string // the node, or a piece of the error
	}{
		{"one node", []volumeCopy{{node: "node2"}}, nil, "node2"},
		{"shared storage, several nodes: the first", []volumeCopy{{"node2", true}, {"node1", true}}, nil, "node1"},
		{"shared, and nodes without an API: still the same storage", []volumeCopy{{"node2", true}}, []string{"node3"}, "node2"},
		{"local copies on several nodes", []volumeCopy{{"node2", false}, {"node1", false}}, nil, "error: a copy on each of node1, node2"},
		{"mixed", []volumeCopy{{"node2", true}, {"node1", false}}, nil, "error: a copy on each of node1, node2"},
		{"nowhere", nil, nil, "error: on no node yet"},
		{"a node without an API may hold it", []volumeCopy{{"node1", false}}, []string{"node3", "node2"}, "error: no Docker API is known for node2, node3"},
	} {
		got, err := volumeNode("pgdata", c.copies, c.unknown)
		if err != nil {
			got = "error: " + err.Error()
		}
		if want, ok := strings.CutPrefix(c.want, "error: "); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: got %q, want an error with %q", c.name, got, want)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
