package backup

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// testManager is a Manager on an engine on a real store in a temporary
// directory, with no runtime: enough for the backup bookkeeping
// (schedules, retention).
func testManager(t *testing.T) *Manager {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "moorage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := engine.New(engine.Options{Store: st, DataDir: dir, Logger: log})
	return New(Options{Engine: e, Store: st, DataDir: dir, Logger: log})
}

// activate makes a release with the given backups section app's active one.
func activate(t *testing.T, e *Manager, app string, b *spec.Backups) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.st.EnsureApp(ctx, app, "process"); err != nil {
		t.Fatal(err)
	}
	d := &store.Deploy{App: app, Kind: store.KindDeploy, Owner: "test"}
	if err := e.st.CreateDeploy(ctx, d); err != nil {
		t.Fatal(err)
	}
	r := &store.Release{App: app, Cause: "deploy", Runtime: "process", Spec: &spec.Spec{App: app, Runtime: "process", Backups: b}, DeployID: d.ID}
	if err := e.st.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := e.st.CommitCutover(ctx, d.ID, app, r.Version); err != nil {
		t.Fatal(err)
	}
}

// clock steps through the scheduler's wake-ups, as scheduleBackups does
// with the real clock: each tick covers (previous wake-up, now].
type clock struct {
	t    *testing.T
	s    *backupScheduler
	last time.Time
}

func (c *clock) tick(now time.Time) []dueBackup {
	c.t.Helper()
	due := c.s.due(context.Background(), c.last, now)
	c.last = now
	return due
}

func at(day, h, m, s int, ms int) time.Time {
	return time.Date(2026, 3, day, h, m, s, ms*int(time.Millisecond), time.UTC)
}

// A daily schedule runs once a day however the wake-ups fall (they were
// one second off: "0 3 * * *" ran at 03:00 and again at 03:01); a slot that
// passed while the server was down runs at the next start and is reported;
// a changed schedule counts from the change; a slot whose previous backup
// is still running is reported missed.
func TestScheduledBackupRunsOncePerSlot(t *testing.T) {
	e := testManager(t)
	activate(t, e, "hello", &spec.Backups{Schedule: "0 3 * * *", Keep: 7})

	start := at(10, 2, 58, 30, 0)
	c := &clock{t: t, s: newBackupScheduler(e, start), last: start}
	var got []dueBackup
	// Wake-ups a little after each minute boundary, for an hour and a half.
	for m := 59; m < 59+90; m++ {
		got = append(got, c.tick(at(10, 2, 0, 0, 3+m%5).Add(time.Duration(m)*time.Minute))...)
	}
	if len(got) != 1 || !got[0].slot.Equal(at(10, 3, 0, 0, 0)) || got[0].missed != 0 {
		t.Fatalf("over 90 minutes around 03:00: %+v, want one backup for 03:00", got)
	}

	// A wake-up a hair early, then one a minute later, exactly on the
	// boundary: still once.
	c.last = at(11, 2, 59, 59, 999)
	if d := c.tick(at(11, 2, 59, 59, 999)); len(d) != 0 {
		t.Fatalf("before 03:00: %+v", d)
	}
	if d := c.tick(at(11, 3, 1, 0, 0)); len(d) != 1 || d[0].missed != 0 {
		t.Fatalf("the 03:00 of day 11: %+v", d)
	}
	if d := c.tick(at(11, 3, 2, 0, 0)); len(d) != 0 {
		t.Fatalf("ran twice: %+v", d)
	}

	// The server is down from day 11 to day 13, 09:00: one backup at the
	// first wake-up, reported as two missed slots (12 and 13 at 03:00).
	restart := at(13, 9, 0, 10, 0)
	c = &clock{t: t, s: newBackupScheduler(e, restart), last: restart}
	d := c.tick(at(13, 9, 1, 0, 2))
	if len(d) != 1 || !d[0].slot.Equal(at(13, 3, 0, 0, 0)) || d[0].missed != 2 ||
		!d[0].firstMissed.Equal(at(12, 3, 0, 0, 0)) || d[0].reason != "the server was not running" {
		t.Fatalf("after downtime: %+v", d)
	}
	if d := c.tick(at(13, 9, 2, 0, 2)); len(d) != 0 {
		t.Fatalf("the missed slot ran twice: %+v", d)
	}

	// A new schedule counts from its first wake-up, not from the old one's
	// last slot.
	activate(t, e, "hello", &spec.Backups{Schedule: "*/30 * * * *", Keep: 7})
	c.last = at(13, 10, 0, 0, 100)
	if d := c.tick(at(13, 10, 1, 0, 100)); len(d) != 0 {
		t.Fatalf("a changed schedule caught up on the old one: %+v", d)
	}
	c.last = at(13, 10, 29, 0, 100)
	if d := c.tick(at(13, 10, 30, 0, 100)); len(d) != 1 || d[0].missed != 0 || d[0].schedule != "*/30 * * * *" {
		t.Fatalf("10:30: %+v", d)
	}

	// 11:00 comes while the 10:30 backup still runs: skipped then, and
	// reported with the 11:30 one.
	c.s.running["hello"] = true
	c.last = at(13, 10, 59, 0, 100)
	if d := c.tick(at(13, 11, 0, 0, 100)); len(d) != 0 {
		t.Fatalf("started a second backup of a busy app: %+v", d)
	}
	c.s.finished("hello")
	c.last = at(13, 11, 29, 0, 100)
	d = c.tick(at(13, 11, 30, 0, 100))
	if len(d) != 1 || !d[0].slot.Equal(at(13, 11, 30, 0, 0)) || d[0].missed != 1 || !strings.Contains(d[0].reason, "still running") {
		t.Fatalf("11:30 after a busy 11:00: %+v", d)
	}
}

// A schedule problem that keeps an app's backups from running is raised
// once, not at every wake-up.
func TestScheduleProblemIsRaisedOnce(t *testing.T) {
	e := testManager(t)
	activate(t, e, "hello", &spec.Backups{Schedule: "not a schedule", Keep: 7})
	start := at(10, 2, 58, 30, 0)
	c := &clock{t: t, s: newBackupScheduler(e, start), last: start}
	for m := 0; m < 5; m++ {
		if d := c.tick(start.Add(time.Duration(m+1) * time.Minute)); len(d) != 0 {
			t.Fatalf("an invalid schedule ran: %+v", d)
		}
	}
	evs, err := e.st.ListEvents(context.Background(), "hello", 50, store.EventBackup)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "invalid cron expression") {
		t.Fatalf("events: %+v", evs)
	}
}

// Counting the slots of a long downtime stops at maxCountedSlots, and the
// latest slot is still found.
func TestSlotsDueAfterLongDowntime(t *testing.T) {
	c, err := spec.ParseCron("* * * * *")
	if err != nil {
		t.Fatal(err)
	}
	now := at(31, 12, 0, 30, 0)
	first, latest, n := slotsDue(c, at(1, 0, 0, 0, 0), now)
	if n != maxCountedSlots || !first.Equal(at(1, 0, 1, 0, 0)) || !latest.Equal(at(31, 12, 0, 0, 0)) {
		t.Fatalf("slotsDue = %v, %v, %d", first, latest, n)
	}
	c, _ = spec.ParseCron("0 3 * * *")
	if _, _, n := slotsDue(c, at(10, 3, 0, 0, 0), at(10, 3, 1, 0, 0)); n != 0 {
		t.Fatalf("the slot just run is due again: %d", n)
	}
}

// Retention after a scheduled backup: for each target that succeeded, the
// newest keep scheduled backups stay; manual ones are neither deleted nor
// counted; a target that failed this time keeps everything; an archive
// that cannot be deleted is reported and the others still go.
func TestKeepBackupsPerSucceededTarget(t *testing.T) {
	e := testManager(t)
	ctx := context.Background()
	activate(t, e, "hello", &spec.Backups{Schedule: "0 3 * * *", Keep: 2})
	dir := t.TempDir()
	mk := func(kind, target, trigger, status string, day int) *store.Backup {
		t.Helper()
		id := "hello-" + kind + "-" + target + "-" + trigger + "-" + at(day, 3, 0, 0, 0).Format("20060102")
		b := &store.Backup{ID: id, App: "hello", Kind: kind, Target: target, Path: filepath.Join(dir, id+".tar.gz"),
			Status: status, Trigger: trigger, CreatedAt: at(day, 3, 0, 0, 0)}
		if status == store.BackupOK {
			if err := os.WriteFile(b.Path, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(manifestPath(b), []byte("{}"), 0o600)
		}
		if err := e.st.PutBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	var data []*store.Backup
	for day := 1; day <= 5; day++ {
		data = append(data, mk(BackupVolume, "data", "schedule", store.BackupOK, day))
	}
	manual := mk(BackupVolume, "data", "manual", store.BackupOK, 6)
	failed := mk(BackupVolume, "data", "schedule", store.BackupFailed, 6)
	var db []*store.Backup
	for day := 1; day <= 4; day++ {
		db = append(db, mk(BackupPostgres, "db", "schedule", store.BackupOK, day))
	}
	// Day 2's archive cannot be removed (a non-empty directory in its place).
	os.Remove(data[1].Path)
	os.MkdirAll(filepath.Join(data[1].Path, "x"), 0o700)

	deleted, err := e.keepBackups(ctx, "hello", 2, []*store.Backup{data[4]})
	if err == nil || !strings.Contains(err.Error(), data[1].ID) {
		t.Fatalf("keepBackups error = %v, want one naming %s", err, data[1].ID)
	}
	if strings.Join(deleted, " ") != data[2].ID+" "+data[0].ID {
		t.Fatalf("deleted %v, want days 3 and 1 of data", deleted)
	}
	left, _ := e.st.ListBackups(ctx, "hello")
	have := map[string]bool{}
	for _, b := range left {
		have[b.ID] = true
	}
	for _, b := range append([]*store.Backup{data[4], data[3], data[1], manual, failed}, db...) {
		if !have[b.ID] {
			t.Errorf("%s was deleted", b.ID)
		}
	}
	for _, b := range []*store.Backup{data[0], data[2]} {
		if have[b.ID] {
			t.Errorf("%s was kept", b.ID)
		}
		if _, err := os.Stat(b.Path); !os.IsNotExist(err) {
			t.Errorf("%s's archive is still there", b.ID)
		}
		if _, err := os.Stat(manifestPath(b)); !os.IsNotExist(err) {
			t.Errorf("%s's manifest is still there", b.ID)
		}
	}
}
