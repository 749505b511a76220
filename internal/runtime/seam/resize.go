package seam

import "github.com/moorage/moorage/internal/runtime"

// FollowResize applies each size from ch (a one-off's terminal resized,
// runtime.RunSpec.Resize) until ch closes or stop is called; zero sizes
// are skipped. A nil ch needs no stop: it returns a no-op.
func FollowResize(ch <-chan runtime.TermSize, apply func(runtime.TermSize)) (stop func()) {
	if ch == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case sz, ok := <-ch:
				if !ok {
					return
				}
				if !sz.Zero() {
					apply(sz)
				}
			}
		}
	}()
	return func() { close(done) }
}
