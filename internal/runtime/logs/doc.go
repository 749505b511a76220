// Package logs keeps instance output the same way for every runtime, so
// that `moorage logs` reads them alike and they outlive the instances:
//
//	DataDir/logs/<app>/<instance-id>.log     the current file
//	DataDir/logs/<app>/<instance-id>.log.N   rotations, .1 the newest
//
// Each line is "<RFC3339Nano UTC time> <stdout|stderr> <text>". File
// appends and rotates, Read reads (and follows) across rotations, Prune
// enforces a retention.
package logs

import (
	"path/filepath"
	"strconv"
)

// MaxLine is the longest log line; longer output is split.
const MaxLine = 64 << 10

// Path is the current log file of an instance.
func Path(dataDir, app, id string) string {
	return filepath.Join(dataDir, "logs", app, id+".log")
}

// RotatedName returns the name of rotation n of the log at path (0: the
// current file).
func RotatedName(path string, n int) string {
	if n == 0 {
		return path
	}
	return path + "." + strconv.Itoa(n)
}
