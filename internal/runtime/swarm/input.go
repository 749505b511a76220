package swarm

import (
	"fmt"
	"io"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// inputWait is how long a one-off waits to learn whether its input is
// empty.
const inputWait = time.Second

// noInput checks that a one-off (a swarm job, which has no stdin) is given
// no input. The API always hands Run a reader: `moorage run` without a
// terminal sends its stdin, which is empty (/dev/null, a closed pipe) for
// all but `moorage run -- cmd < file`. An input that ends within wait
// without a byte is none; one that brings a byte is refused; one still
// open after wait (a terminal left as stdin) is never read by the job.
// Whatever comes later is read and dropped, so that the sender never
// blocks.
func noInput(in io.Reader, wait time.Duration) error {
	got := make(chan bool, 1)
	go func() {
		var b [1]byte
		for {
			n, err := in.Read(b[:])
			if n > 0 {
				got <- true
				io.Copy(io.Discard, in)
				return
			}
			if err != nil {
				got <- false
				return
			}
		}
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case data := <-got:
		if data {
			return fmt.Errorf("one-offs on swarm get no input (a swarm job has no stdin); put the input in the image or a volume, or exec into a running instance: %w", runtime.ErrNotSupported)
		}
		return nil
	case <-t.C:
		return nil
	}
}
