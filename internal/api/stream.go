package api

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// The `moorage run` stream: after an HTTP upgrade, both sides exchange
// frames of a 1-byte type, a 4-byte big-endian length and the payload.
const (
	FrameStdin    = 'i' // client → server: input
	FrameStdinEOF = 'e' // client → server: end of input
	FrameStdout   = 'o' // server → client
	FrameStderr   = 'E' // server → client
	FrameExit     = 'x' // server → client: exit code, 4 bytes, last frame
	FrameError    = 'f' // server → client: the command could not run; text, last frame
	// FrameResize: client → server, the client's terminal changed size:
	// 4 bytes, columns then rows, each 2 bytes big-endian (EncodeSize). A
	// server that predates it ignores it, as any unknown frame.
	FrameResize = 'w'
	UpgradeRun  = "moorage-run"
	maxFrame    = 1 << 20
)

// TermSize is a terminal's size in characters. The size at the start
// goes in the run request's query (cols, rows), its changes in
// FrameResize frames.
type TermSize struct{ Cols, Rows uint16 }

// EncodeSize is the payload of a FrameResize frame.
func EncodeSize(sz TermSize) []byte {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:2], sz.Cols)
	binary.BigEndian.PutUint16(b[2:], sz.Rows)
	return b[:]
}

// DecodeSize reads a FrameResize frame's payload.
func DecodeSize(p []byte) (TermSize, error) {
	if len(p) != 4 {
		return TermSize{}, fmt.Errorf("%w: a resize frame of %d bytes, want 4", ErrFrame, len(p))
	}
	return TermSize{Cols: binary.BigEndian.Uint16(p[:2]), Rows: binary.BigEndian.Uint16(p[2:])}, nil
}

// ErrFrame is returned for a malformed frame.
var ErrFrame = errors.New("malformed stream frame")

// FrameWriter writes frames; it is safe for concurrent use.
type FrameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewFrameWriter returns a frame writer on w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// Write sends one frame.
func (f *FrameWriter) Write(typ byte, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
	if _, err := f.w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := f.w.Write(p)
	return err
}

// Stream returns an io.Writer that sends each write as a frame of typ.
func (f *FrameWriter) Stream(typ byte) io.Writer { return frameStream{f, typ} }

type frameStream struct {
	f   *FrameWriter
	typ byte
}

func (s frameStream) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		if err := s.f.Write(s.typ, p[:n]); err != nil {
			return total - len(p), err
		}
		p = p[n:]
	}
	return total, nil
}

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrFrame, n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	return hdr[0], p, nil
}
