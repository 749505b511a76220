package seam

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestPeekInput(t *testing.T) {
	// Empty input (what `moorage run` sends from /dev/null): none.
	if _, data := PeekInput(strings.NewReader(""), time.Minute); data {
		t.Fatalf("empty input reads as data")
	}
	// Input with bytes: all of it, the first byte included.
	in, data := PeekInput(strings.NewReader("SELECT 1;\n"), time.Minute)
	if !data {
		t.Fatal("input with data reads as none")
	}
	if b, err := io.ReadAll(in); err != nil || string(b) != "SELECT 1;\n" {
		t.Fatalf("input read back: %q %v", b, err)
	}
	// Input still open after the wait (a terminal): none, and what comes
	// later is read and dropped (the sender never blocks).
	r, w := io.Pipe()
	if _, data := PeekInput(r, 10*time.Millisecond); data {
		t.Fatal("open input without a byte reads as data")
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.Write([]byte("late input, more than one byte"))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write of late input blocks")
	}
	w.Close()
}
