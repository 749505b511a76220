//go:build !linux

package loadgen

import "time"

const precisePacer = false

func lockPacerThread() {}

func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }
