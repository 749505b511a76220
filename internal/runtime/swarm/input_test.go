package swarm

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

func TestNoInput(t *testing.T) {
	// Empty input (what `moorage run` sends from /dev/null): none.
	if err := noInput(strings.NewReader(""), time.Minute); err != nil {
		t.Fatalf("empty input: %v", err)
	}
	// Input with bytes: refused, saying so.
	if err := noInput(strings.NewReader("SELECT 1;\n"), time.Minute); !errors.Is(err, runtime.ErrNotSupported) || !strings.Contains(err.Error(), "no input") {
		t.Fatalf("input with data: %v", err)
	}
	// Input still open after the wait (a terminal): none, and what comes
	// later is read and dropped (the sender never blocks).
	r, w := io.Pipe()
	if err := noInput(r, 10*time.Millisecond); err != nil {
		t.Fatalf("open input: %v", err)
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
