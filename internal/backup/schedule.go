package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// lateAfter is how long after its time a scheduled backup still counts as
// on time (the scheduler wakes at each minute boundary; a busy machine may
// wake it a little late).
const lateAfter = 2 * time.Minute

// maxCountedSlots bounds how many missed slots are counted one by one.
const maxCountedSlots = 1000

// scheduleState is what the journal keeps of an app's schedule: the last
// slot handled (run, or reported missed), so that a slot runs once however
// the scheduler's wake-ups fall, and one that passed while the server was
// down is noticed at the next start.
type scheduleState struct {
	Schedule string    `json:"schedule"`
	Slot     time.Time `json:"slot"`
}

// dueBackup is a scheduled backup to run now.
type dueBackup struct {
	app      string
	schedule string
	keep     int
	slot     time.Time // the schedule time it runs for
	// missed counts the slots (this one included when it runs late) that
	// did not run at their time; first is the earliest of them.
	missed      int
	firstMissed time.Time
	reason      string // why they were missed
}

// backupScheduler decides which scheduled backups are due and runs them.
type backupScheduler struct {
	m       *Manager
	started time.Time // when this server started: slots before it passed while it was down

	mu       sync.Mutex
	running  map[string]bool   // apps whose scheduled backup is under way
	reported map[string]string // app → the last schedule problem reported (raised once, not every minute)
}

func newBackupScheduler(m *Manager, started time.Time) *backupScheduler {
	return &backupScheduler{m: m, started: started, running: map[string]bool{}, reported: map[string]string{}}
}

// scheduleBackups runs the apps' scheduled backups until ctx ends (the
// engine closes). It wakes at each minute boundary and runs what is due.
func (m *Manager) scheduleBackups(ctx context.Context) {
	s := newBackupScheduler(m, time.Now())
	last := s.started
	for {
		next := time.Now().Truncate(time.Minute).Add(time.Minute)
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		now := time.Now()
		s.tick(ctx, last, now)
		last = now
	}
}

// tick starts the scheduled backups due at now. Each runs as its own
// operation: one that waits for its app's lock delays no other app.
func (s *backupScheduler) tick(ctx context.Context, from, now time.Time) {
	for _, d := range s.due(ctx, from, now) {
		s.run(d)
	}
}

// due returns the scheduled backups due at now and records their slots as
// handled. from is the previous wake-up: an app seen for the first time
// (or whose schedule changed) counts its slots from there. Every problem
// is raised (an event and an error log line), once.
func (s *backupScheduler) due(ctx context.Context, from, now time.Time) []dueBackup {
	m := s.m
	apps, err := m.st.ListApps(ctx)
	if err != nil {
		// Nothing is marked handled: the slots are found again at the next
		// wake-up, run late and reported.
		m.log.Error("scheduled backups: cannot list apps; retrying in a minute", "err", err)
		return nil
	}
	var out []dueBackup
	for _, a := range apps {
		// The active release, read as every operation reads it (no lock:
		// nothing changes here).
		err := m.e.OperateLocked(ctx, nil, engine.LockedOperation{App: a.Name, NeedApp: true},
			func(ctx context.Context, a *store.App, rel *store.Release) error {
				if rel == nil {
					return nil
				}
				if d, ok := s.dueOf(ctx, a, rel, from, now); ok {
					out = append(out, d)
				}
				return nil
			})
		if err != nil {
			s.problem(ctx, a.Name, fmt.Sprintf("scheduled backups cannot run: reading the active release failed: %v", err))
		}
	}
	return out
}

// dueOf returns the scheduled backup of app a, whose active release is
// rel, if one is due at now, and records its slot as handled.
func (s *backupScheduler) dueOf(ctx context.Context, a *store.App, rel *store.Release, from, now time.Time) (dueBackup, bool) {
	b := rel.Spec.Backups
	if b == nil {
		s.clear(a.Name)
		return dueBackup{}, false
	}
	cron, err := spec.ParseCron(b.Schedule)
	if err != nil {
		s.problem(ctx, a.Name, fmt.Sprintf("scheduled backups cannot run: %v", err))
		return dueBackup{}, false
	}
	st, err := s.state(ctx, a.Name)
	if err != nil {
		s.problem(ctx, a.Name, fmt.Sprintf("scheduled backups cannot run: %v", err))
		return dueBackup{}, false
	}
	s.clear(a.Name)
	if st == nil || st.Schedule != b.Schedule {
		// First sight of this schedule: its slots count from the
		// previous wake-up (not from a schedule it replaced).
		st = &scheduleState{Schedule: b.Schedule, Slot: from}
		if err := s.setState(ctx, a.Name, st); err != nil {
			s.problem(ctx, a.Name, fmt.Sprintf("scheduled backups cannot run: %v", err))
			return dueBackup{}, false
		}
	}
	first, latest, n := slotsDue(cron, st.Slot, now)
	if n == 0 {
		return dueBackup{}, false
	}
	if s.busy(a.Name) {
		return dueBackup{}, false // still backing up the previous slot; this one counts as missed next time
	}
	d := dueBackup{app: a.Name, schedule: b.Schedule, keep: b.Keep, slot: latest, firstMissed: first}
	d.missed = n - 1
	if now.Sub(latest) > lateAfter {
		d.missed = n
	}
	if d.missed > 0 {
		d.reason = "the server was not running"
		if !d.firstMissed.Before(s.started) {
			d.reason = "the previous backup of " + a.Name + " was still running"
		}
	}
	// Handled from now on: a slot runs once, even if the server dies
	// during its backup (whose record the next start marks failed).
	if err := s.setState(ctx, a.Name, &scheduleState{Schedule: b.Schedule, Slot: latest}); err != nil {
		s.problem(ctx, a.Name, fmt.Sprintf("scheduled backup of %s not started: %v", latest.Format(time.DateTime), err))
		return dueBackup{}, false
	}
	return d, true
}

// run starts a scheduled backup as an operation. Failures before any
// target was backed up (the lock wait cut short, nothing to back up, ...)
// are raised here; createBackups raises those of each target. Retention
// then applies to each target that succeeded.
func (s *backupScheduler) run(d dueBackup) {
	m := s.m
	s.mu.Lock()
	s.running[d.app] = true
	s.mu.Unlock()
	op := m.e.StartOp(func(ctx context.Context, op *engine.Op) (string, error) {
		defer s.finished(d.app)
		if d.missed > 0 {
			msg := fmt.Sprintf("schedule backup MISSED %d time(s) since %s (%s): backing up now", d.missed, d.firstMissed.Local().Format(time.DateTime), d.reason)
			if d.missed >= maxCountedSlots {
				msg = fmt.Sprintf("schedule backup MISSED %d times or more since %s (%s): backing up now", maxCountedSlots, d.firstMissed.Local().Format(time.DateTime), d.reason)
			}
			m.raise(ctx, d.app, msg)
		}
		m.log.Info("scheduled backup", "app", d.app, "schedule", d.schedule, "slot", d.slot)
		req := BackupRequest{App: d.app, All: true, Trigger: "schedule", Owner: "moorage server (schedule " + d.schedule + ")"}
		bs, err := m.backupLocked(ctx, op, req)
		if err != nil && len(bs) == 0 {
			m.raise(ctx, d.app, fmt.Sprintf("schedule backup of %s FAILED before backing anything up: %v", d.slot.Local().Format(time.DateTime), err))
		}
		var ok []*store.Backup
		for _, b := range bs {
			if b.Status == store.BackupOK {
				ok = append(ok, b)
			}
		}
		// Under the app's lock, like the backups: a restore that checked
		// its archive must not see it deleted under it.
		var deleted []string
		kerr := m.e.OperateLocked(ctx, op, engine.LockedOperation{App: d.app, Owner: req.Owner, Lock: "delete old backups", Wait: true},
			func(ctx context.Context, _ *store.App, _ *store.Release) error {
				var err error
				deleted, err = m.keepBackups(ctx, d.app, d.keep, ok)
				return err
			})
		if len(deleted) > 0 {
			m.log.Info("pruned old backups", "app", d.app, "deleted", deleted)
		}
		if kerr != nil {
			m.raise(ctx, d.app, fmt.Sprintf("deleting old backups (keep: %d) FAILED: %v", d.keep, kerr))
		}
		if err = errors.Join(err, kerr); err != nil {
			return store.DeployFailed, err
		}
		return store.DeploySucceeded, nil
	})
	select {
	case <-op.Done():
		// Refused at once (the engine is closing): nothing ran.
		s.finished(d.app)
	default:
	}
}

func (s *backupScheduler) busy(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[app]
}

func (s *backupScheduler) finished(app string) {
	s.mu.Lock()
	delete(s.running, app)
	s.mu.Unlock()
}

// problem raises a problem that keeps the app's schedule from running,
// once until it changes or goes away.
func (s *backupScheduler) problem(ctx context.Context, app, msg string) {
	s.mu.Lock()
	same := s.reported[app] == msg
	s.reported[app] = msg
	s.mu.Unlock()
	if !same {
		s.m.raise(ctx, app, msg)
	}
}

func (s *backupScheduler) clear(app string) {
	s.mu.Lock()
	delete(s.reported, app)
	s.mu.Unlock()
}

func (s *backupScheduler) state(ctx context.Context, app string) (*scheduleState, error) {
	v, err := s.m.st.GetJournal(ctx, app, store.JournalSchedule)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st scheduleState
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return nil, nil // unreadable: start again from now
	}
	return &st, nil
}

func (s *backupScheduler) setState(ctx context.Context, app string, st *scheduleState) error {
	b, _ := json.Marshal(st)
	return s.m.st.PutJournal(ctx, app, store.JournalSchedule, string(b))
}

// raise makes a backup problem loud: an event in the app's history (which
// `moorage ps` shows) and an error line in the server's log.
func (m *Manager) raise(ctx context.Context, app, msg string) {
	m.log.Error("backup: "+msg, "app", app)
	if err := m.st.AddEvent(context.WithoutCancel(ctx), store.AppEvent{App: app, Kind: store.EventBackup, Message: msg}); err != nil {
		m.log.Error("record backup event", "app", app, "err", err)
	}
}

// slotsDue returns the schedule's times in (after, now]: the first, the
// latest and how many (counted up to maxCountedSlots).
func slotsDue(c *spec.Cron, after, now time.Time) (first, latest time.Time, n int) {
	first = c.Next(after)
	if first.IsZero() || first.After(now) {
		return time.Time{}, time.Time{}, 0
	}
	latest, n = first, 1
	for t := c.Next(first); !t.IsZero() && !t.After(now); t = c.Next(t) {
		latest, n = t, n+1
		if n == maxCountedSlots {
			return first, lastSlot(c, latest, now), n
		}
	}
	return first, latest, n
}

// lastSlot returns the schedule's latest time in [from, now], looking back
// from now in widening windows rather than stepping through every slot.
func lastSlot(c *spec.Cron, from, now time.Time) time.Time {
	for _, d := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		start := now.Add(-d)
		if start.Before(from) {
			start = from
		}
		t := c.Next(start)
		if t.IsZero() || t.After(now) {
			continue
		}
		for u := c.Next(t); !u.IsZero() && !u.After(now); u = c.Next(u) {
			t = u
		}
		return t
	}
	return from
}

// keepBackups applies retention after a scheduled backup: for each target
// that was just backed up successfully, the newest keep scheduled backups
// are kept and older scheduled ones deleted. Manual and imported backups
// are never deleted, and do not count toward keep; a target whose backup
// failed keeps everything it has.
func (m *Manager) keepBackups(ctx context.Context, app string, keep int, succeeded []*store.Backup) ([]string, error) {
	if keep < 1 || len(succeeded) == 0 {
		return nil, nil
	}
	targets := map[string]bool{}
	for _, b := range succeeded {
		targets[b.Kind+"/"+b.Target] = true
	}
	all, err := m.st.ListBackups(ctx, app)
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	var deleted []string
	var errs []error
	for _, b := range all { // newest first
		k := b.Kind + "/" + b.Target
		if !targets[k] || b.Status != store.BackupOK || b.Trigger != "schedule" {
			continue
		}
		seen[k]++
		if seen[k] <= keep {
			continue
		}
		if err := m.DeleteBackup(ctx, b); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", b.ID, err))
			continue
		}
		deleted = append(deleted, b.ID)
	}
	return deleted, errors.Join(errs...)
}
