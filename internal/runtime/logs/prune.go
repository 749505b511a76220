package logs

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/runtime"
)

// Prune deletes the log files (current and rotated) under dir (one app's
// logs) of instances ret.Keep does not keep: first those not written to for
// MaxAge, then the oldest until the logs take at most MaxBytes. Rotated
// files of kept instances go after that if still needed; their current file
// never does. It returns the bytes freed.
func Prune(ctx context.Context, dir string, ret runtime.LogRetention) (int64, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	type file struct {
		path    string
		size    int64
		mod     time.Time
		kept    bool // the instance is kept
		current bool // <id>.log, not a rotation
	}
	var files []file
	var total int64
	for _, e := range entries {
		name := e.Name()
		i := strings.Index(name, ".log")
		if i <= 0 {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		id := name[:i]
		f := file{path: filepath.Join(dir, name), size: info.Size(), mod: info.ModTime(),
			kept: ret.Keep != nil && ret.Keep(id), current: strings.HasSuffix(name, ".log")}
		files = append(files, f)
		total += f.size
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
	var freed int64
	gone := make([]bool, len(files))
	remove := func(i int) {
		if err := os.Remove(files[i].path); err == nil {
			gone[i] = true
			freed += files[i].size
			total -= files[i].size
		}
	}
	if ret.MaxAge > 0 {
		cutoff := time.Now().Add(-ret.MaxAge)
		for i, f := range files {
			if !f.kept && f.mod.Before(cutoff) {
				remove(i)
			}
		}
	}
	if ret.MaxBytes > 0 {
		for pass := 0; pass < 2 && total > ret.MaxBytes; pass++ {
			for i, f := range files {
				if total <= ret.MaxBytes {
					break
				}
				if gone[i] || (pass == 0 && f.kept) || (pass == 1 && (!f.kept || f.current)) {
					continue
				}
				remove(i)
			}
		}
	}
	return freed, ctx.Err()
}
