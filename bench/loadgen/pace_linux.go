package loadgen

import (
	"runtime"
	"syscall"
	"time"
)

// precisePacer reports whether pace runs on a dedicated thread sleeping
// with nanosleep: Go's own timers wake an idle process through epoll, whose
// timeout has millisecond resolution, which would add up to a millisecond of
// send-time error to every measured latency.
const precisePacer = true

// lockPacerThread dedicates the calling goroutine's thread to pacing, with
// the finest timer slack the kernel gives it.
func lockPacerThread() {
	runtime.LockOSThread()
	const prSetTimerSlack = 29
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1000, 0) // 1µs
}

// sleepUntil sleeps precisely until t (a few microseconds late at most on
// an idle core).
func sleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		if err := syscall.Nanosleep(&ts, &rem); err != syscall.EINTR {
			return
		}
		ts = rem
	}
}
