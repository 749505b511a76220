package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// pollEvery is how often a worker looks at the queue.
const pollEvery = 200 * time.Millisecond

// runWorker polls $DATA/queue and claims each job by renaming it into
// $DATA/done; a job another worker renamed first is skipped, so any number
// of workers can share the queue. Every claimed job is logged to stdout and
// recorded as "done <instance> <release> <job-id> <unix-nanos>" in
// $DATA/worker.log. SIGTERM stops it (exit 0).
func runWorker(ctx context.Context, e *env, log *slog.Logger) error {
	if err := e.ensureDataDir(queueDir, doneDir); err != nil {
		return err
	}
	log.Info("worker started", "every", pollEvery.String(), "queue", e.data(queueDir))
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	total := 0
	for {
		n, err := claimJobs(ctx, e, log)
		total += n
		if err != nil {
			log.Error("processing the queue failed", "err", err)
		}
		select {
		case <-ctx.Done():
			log.Info("worker stopped", "processed", total)
			return nil
		case <-tick.C:
		}
	}
}

// claimJobs claims every job in the queue, oldest first, and returns how
// many this worker got.
func claimJobs(ctx context.Context, e *env, log *slog.Logger) (int, error) {
	names, err := jobFiles(e.data(queueDir))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		done := filepath.Join(e.dataDir, doneDir, name)
		if err := os.Rename(filepath.Join(e.dataDir, queueDir, name), done); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // another worker claimed it
			}
			return n, fmt.Errorf("claim %s: %w", name, err)
		}
		n++
		var j job
		if b, err := os.ReadFile(done); err == nil {
			_ = json.Unmarshal(b, &j)
		}
		id := name[:len(name)-len(".json")]
		log.Info("job done", "job", id, "enqueued_by", j.Instance, "enqueued_release", j.Release)
		line := fmt.Sprintf("done %s %s %s %d", field(e.instance), field(e.release), id, nanos())
		if err := appendLine(e.data("worker.log"), line); err != nil {
			return n, fmt.Errorf("write worker.log: %w", err)
		}
	}
	return n, nil
}
