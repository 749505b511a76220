package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// enqueueEvery is how often the scheduler enqueues a job.
const enqueueEvery = 500 * time.Millisecond

// runScheduler is the singleton. It holds an exclusive lock on
// $DATA/scheduler.lock for its whole life; a second scheduler started while
// the lock is held records "CONFLICT <instance> <release> <unix-nanos>" in
// $DATA/scheduler-conflicts.log and exits 1. The one holding the lock writes
// "start ..." and, on SIGTERM, "stop ..." lines to $DATA/scheduler.log and
// enqueues a job every 500ms in between (the first one at once).
func runScheduler(ctx context.Context, e *env, log *slog.Logger) error {
	if err := e.ensureDataDir(queueDir); err != nil {
		return err
	}
	inst, rel := field(e.instance), field(e.release)
	holder := fmt.Sprintf("scheduler pid %d instance %s release %s", os.Getpid(), inst, rel)
	lock, err := tryLock(e.data("scheduler.lock"), holder)
	if errors.Is(err, ErrLocked) {
		line := fmt.Sprintf("CONFLICT %s %s %d", inst, rel, nanos())
		if lerr := appendLine(e.data("scheduler-conflicts.log"), line); lerr != nil {
			err = errors.Join(err, fmt.Errorf("record conflict: %w", lerr))
		}
		return fmt.Errorf("another scheduler is running and there must be only one, exiting: %w", err)
	}
	if err != nil {
		return err
	}
	defer lock.Close() // the stop line below is written before the lock goes

	if err := appendLine(e.data("scheduler.log"), fmt.Sprintf("start %s %s %d", inst, rel, nanos())); err != nil {
		return fmt.Errorf("write scheduler.log: %w", err)
	}
	log.Info("scheduler started", "every", enqueueEvery.String(), "queue", e.data(queueDir))

	tick := time.NewTicker(enqueueEvery)
	defer tick.Stop()
	for seq := 1; ; seq++ {
		if id, err := enqueue(e, seq); err != nil {
			log.Error("enqueue failed", "err", err)
		} else {
			log.Debug("enqueued", "job", id)
		}
		select {
		case <-ctx.Done():
			if err := appendLine(e.data("scheduler.log"), fmt.Sprintf("stop %s %s %d", inst, rel, nanos())); err != nil {
				return fmt.Errorf("write scheduler.log: %w", err)
			}
			log.Info("scheduler stopped", "enqueued", seq)
			return nil
		case <-tick.C:
		}
	}
}
