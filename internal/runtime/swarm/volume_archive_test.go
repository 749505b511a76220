package swarm

import (
	"archive/tar"
	"bytes"
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

func TestFreshRoot(t *testing.T) {
	archive := func(uid int, files ...string) *bytes.Buffer {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "moorage-volume/", Mode: 0o755, Uid: uid})
		for _, f := range files {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "moorage-volume/" + f, Mode: 0o644})
		}
		tw.Close()
		return &b
	}
	for _, c := range []struct {
		name  string
		in    *bytes.Buffer
		fresh bool
	}{
		{"empty and root's", archive(0), true},
		{"empty and another user's", archive(70), false},
		{"root's with content", archive(0, "PG_VERSION"), false},
	} {
		hdr, fresh, err := freshRoot(c.in)
		if err != nil || fresh != c.fresh || hdr == nil || hdr.Mode != 0o755 {
			t.Errorf("%s: fresh %v, header %+v, %v; want fresh %v", c.name, fresh, hdr, err, c.fresh)
		}
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "moorage-volume", Mode: 0o644})
	tw.Close()
	if _, _, err := freshRoot(&b); err == nil {
		t.Error("a file, not a directory: no error")
	}
}
