package seam

import (
	"bytes"
	"io"
	"time"
)

// InputWait is how long a one-off waits to learn whether its input is
// empty.
const InputWait = time.Second

// PeekInput tells whether a one-off without a terminal is given input,
// for the runtimes that run a one-off without input differently (swarm: a
// job; kubernetes: a Job, and input is not supported).
// The API always hands Run a reader: `moorage run` without a terminal
// sends its stdin, which is empty (/dev/null, a closed pipe) for all but
// `moorage run -- cmd < file`. An input that ends within wait without a
// byte is none (the one-off is a swarm job or a Kubernetes Job); one that brings a byte is
// input, returned whole (the first byte put back) for a container that can
// read it; one still open after wait (a terminal left as stdin) is none,
// and whatever comes later is read and dropped, so that the sender never
// blocks.
func PeekInput(in io.Reader, wait time.Duration) (io.Reader, bool) {
	type peeked struct {
		b    byte
		data bool
	}
	got := make(chan peeked) // unbuffered: once late is closed, nobody takes a byte
	late := make(chan struct{})
	go func() {
		var b [1]byte
		for {
			n, err := in.Read(b[:])
			if n > 0 {
				select {
				case got <- peeked{b[0], true}:
				case <-late: // the one-off went on without input
					io.Copy(io.Discard, in)
				}
				return
			}
			if err != nil {
				select {
				case got <- peeked{}:
				case <-late:
				}
				return
			}
		}
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case p := <-got:
		if !p.data {
			return nil, false
		}
		return io.MultiReader(bytes.NewReader([]byte{p.b}), in), true
	case <-t.C:
		close(late)
		return nil, false
	}
}
