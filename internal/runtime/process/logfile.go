//go:build linux

package process

import (
	"github.com/moorage/moorage/internal/runtime/logs"
)

// maxLine is the longest log line; longer output is split.
const maxLine = logs.MaxLine

// logFile appends lines to an instance log, rotating it by size (see
// package logs for the layout and format).
type logFile = logs.File

func openLogFile(path string, maxSize int64, keep int) (*logFile, error) {
	return logs.Open(path, maxSize, keep)
}

// rotatedName returns the name of rotation n (0: the current file).
func rotatedName(path string, n int) string { return logs.RotatedName(path, n) }
