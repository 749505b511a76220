package engine

import (
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/store"
)

// Output without newlines is passed on in bounded pieces, and the kept
// tail stays bounded too.
func TestTailWriterBoundsLongLines(t *testing.T) {
	var got []string
	w := newTailWriter(func(l string) { got = append(got, l) })
	chunk := strings.Repeat("x", 1000)
	for i := 0; i < 1000; i++ { // 1 MB, no newline
		w.Write([]byte(chunk))
		if len(w.partial) >= maxPartialLine {
			t.Fatalf("after %d KB, %d bytes wait for a newline", i+1, len(w.partial))
		}
	}
	w.Write([]byte("y\nnext line\n"))
	total := 0
	for _, l := range got[:len(got)-1] {
		if len(l) > maxPartialLine {
			t.Fatalf("a piece of %d bytes", len(l))
		}
		total += len(l)
	}
	if total != 1000*1000+1 || got[len(got)-1] != "next line" {
		t.Fatalf("passed on %d bytes in %d pieces, last %q", total, len(got), got[len(got)-1])
	}
	if n := len(w.String()); n > store.MaxStepOutput {
		t.Fatalf("kept %d bytes", n)
	}
}
