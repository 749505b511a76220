package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Queue directories inside $DATA. A job is one JSON file; the scheduler
// writes it atomically into queue/, and a worker claims it by renaming it
// into done/ (rename is atomic, so exactly one worker wins).
const (
	queueDir = "queue"
	doneDir  = "done"
)

// job is the content of a job file.
type job struct {
	ID         string    `json:"id"`
	Seq        int       `json:"seq"`
	Release    string    `json:"release"`
	Instance   string    `json:"instance"`
	EnqueuedAt time.Time `json:"enqueued_at"`
}

// enqueue writes a new job into $DATA/queue. File names start with the
// zero-padded enqueue time in Unix nanoseconds, so they sort by time.
func enqueue(e *env, seq int) (string, error) {
	now := time.Now()
	id := fmt.Sprintf("%020d-%s-%06d", now.UnixNano(), safeName(e.instance), seq)
	b, err := json.Marshal(job{ID: id, Seq: seq, Release: field(e.release), Instance: field(e.instance), EnqueuedAt: now.UTC()})
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(e.dataDir, queueDir, id+".json"), append(b, '\n')); err != nil {
		return "", fmt.Errorf("enqueue %s: %w", id, err)
	}
	return id, nil
}

// jobFiles returns the job file names in dir (sorted, so oldest first),
// skipping temporary files. A missing directory has no jobs.
func jobFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, ent := range entries {
		n := ent.Name()
		if ent.Type().IsRegular() && !strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".json") {
			names = append(names, n)
		}
	}
	return names, nil
}

// safeName makes s usable in a file name.
func safeName(s string) string {
	if s == "" {
		return "local"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}
