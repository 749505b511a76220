package api

import (
	"bytes"
	"errors"
	"testing"
)

// A resize frame carries columns then rows, and reads back as written
// through the frame stream; a payload of another length is malformed.
func TestResizeFrame(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	for _, sz := range []TermSize{{80, 24}, {132, 43}, {65535, 1}} {
		if err := fw.Write(FrameResize, EncodeSize(sz)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []TermSize{{80, 24}, {132, 43}, {65535, 1}} {
		typ, p, err := ReadFrame(&buf)
		if err != nil || typ != FrameResize {
			t.Fatalf("frame: %c %v", typ, err)
		}
		got, err := DecodeSize(p)
		if err != nil || got != want {
			t.Errorf("decoded %+v %v, want %+v", got, err, want)
		}
	}
	if EncodeSize(TermSize{Cols: 0x0102, Rows: 0x0304})[0] != 1 {
		t.Error("columns first, big-endian")
	}
	for _, p := range [][]byte{nil, {1, 2, 3}, {1, 2, 3, 4, 5}} {
		if _, err := DecodeSize(p); !errors.Is(err, ErrFrame) {
			t.Errorf("DecodeSize(%v) = %v, want ErrFrame", p, err)
		}
	}
}
