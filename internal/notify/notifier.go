package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/store"
)

// Sealer seals and opens targets (internal/secrets.Box).
type Sealer interface {
	Seal(app, name string, value []byte) ([]byte, error)
	Open(app, name string, sealed []byte) ([]byte, error)
}

// Options configure a Notifier.
type Options struct {
	Store  *store.Store
	Sealer Sealer
	Logger *slog.Logger
	// Certs, when set, is watched for certificate failures.
	Certs *certs.Manager
	// Interval is how often the store is looked at for new outcomes
	// (default 1s).
	Interval time.Duration
	// Backoff is the wait before the first retry, doubled each time
	// (default 2s); Attempts bounds the tries of one delivery (default 6).
	Backoff  time.Duration
	Attempts int
}

// Notifier watches the store for deploy outcomes and failed backups (and
// the certificate manager for failures) and delivers them. It records
// what it has seen in the store, so a restarted server neither repeats
// nor loses the outcomes of deploys that ended while it was down.
type Notifier struct {
	o      Options
	log    *slog.Logger
	server string
	wg     sync.WaitGroup
	sem    chan struct{}
	certs  map[string]time.Time // cert name → last error time notified
}

// New returns a Notifier; Run starts it.
func New(o Options) *Notifier {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	host, _ := os.Hostname()
	return &Notifier{o: o, log: o.Logger, server: host, sem: make(chan struct{}, 16), certs: map[string]time.Time{}}
}

// sealName is the name a target is sealed under (bound to its app).
const sealName = "notifier"

// Add validates and stores a notifier of app ("" = every app).
func (n *Notifier) Add(ctx context.Context, app string, t Target) (*store.Notifier, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if n.o.Sealer == nil {
		return nil, errors.New("no secrets key is loaded: notifiers cannot be stored")
	}
	b, _ := json.Marshal(t)
	sealed, err := n.o.Sealer.Seal(app, sealName, b)
	if err != nil {
		return nil, err
	}
	rec := store.Notifier{App: app, Kind: t.Kind, Label: t.Label(), Target: sealed}
	id, err := n.o.Store.AddNotifier(ctx, rec)
	if err != nil {
		return nil, err
	}
	return n.o.Store.GetNotifier(ctx, id)
}

func (n *Notifier) open(rec *store.Notifier) (*Target, error) {
	if n.o.Sealer == nil {
		return nil, errors.New("no secrets key is loaded")
	}
	b, err := n.o.Sealer.Open(rec.App, sealName, rec.Target)
	if err != nil {
		return nil, fmt.Errorf("notifier %d does not open with this server's key", rec.ID)
	}
	var t Target
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Test sends a test event to notifier id once, now, and records the
// outcome like any delivery.
func (n *Notifier) Test(ctx context.Context, id int64) error {
	rec, err := n.o.Store.GetNotifier(ctx, id)
	if err != nil {
		return err
	}
	t, err := n.open(rec)
	if err != nil {
		return err
	}
	app := rec.App
	if app == "" {
		app = "*"
	}
	ev := Notification{ID: fmt.Sprintf("test-%d-%d", id, time.Now().UnixNano()), Event: EventTest, App: app, Server: n.server, Time: time.Now(),
		Title: fmt.Sprintf("moorage on %s: test notification", n.server)}
	err = Send(ctx, t, ev)
	n.o.Store.NotifierDelivered(context.WithoutCancel(ctx), id, err)
	return err
}

// Emit delivers ev to the notifiers of its app, in the background.
func (n *Notifier) Emit(ctx context.Context, ev Notification) {
	if ev.Server == "" {
		ev.Server = n.server
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	recs, err := n.o.Store.ListNotifiers(ctx, ev.App)
	if err != nil {
		n.log.Error("notify: list notifiers", "err", err)
		return
	}
	for _, rec := range recs {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.deliver(ctx, rec, ev)
		}()
	}
}

// deliver sends ev to rec, retrying with backoff; the outcome is recorded
// on the notifier.
func (n *Notifier) deliver(ctx context.Context, rec *store.Notifier, ev Notification) {
	select {
	case n.sem <- struct{}{}:
		defer func() { <-n.sem }()
	case <-ctx.Done():
		return
	}
	t, err := n.open(rec)
	if err != nil {
		n.o.Store.NotifierDelivered(context.WithoutCancel(ctx), rec.ID, err)
		return
	}
	wait := n.o.Backoff
	for attempt := 1; ; attempt++ {
		err = Send(ctx, t, ev)
		if err == nil || attempt >= n.o.Attempts || ctx.Err() != nil {
			break
		}
		n.log.Warn("notify: delivery failed; retrying", "notifier", rec.ID, "to", rec.Label, "event", ev.ID, "attempt", attempt, "err", err)
		n.o.Store.NotifierDelivered(context.WithoutCancel(ctx), rec.ID, err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait *= 2
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", ev.Event, err)
		n.log.Error("notify: delivery failed", "notifier", rec.ID, "to", rec.Label, "event", ev.ID, "err", err)
	}
	n.o.Store.NotifierDelivered(context.WithoutCancel(ctx), rec.ID, err)
}

// Cursors in the store.
const (
	cursorDeploys = "deploys"
	cursorBackups = "backups"
)

// Run watches for outcomes until ctx ends, then waits for deliveries in
// flight (which end with ctx).
func (n *Notifier) Run(ctx context.Context) {
	defer n.wg.Wait()
	deploys, err := n.cursor(ctx, cursorDeploys)
	if err != nil {
		n.log.Error("notify: cannot start", "err", err)
		return
	}
	backups, err := n.cursor(ctx, cursorBackups)
	if err != nil {
		n.log.Error("notify: cannot start", "err", err)
		return
	}
	tick := time.NewTicker(n.o.Interval)
	defer tick.Stop()
	for {
		deploys = n.pollDeploys(ctx, deploys)
		backups = n.pollBackups(ctx, backups)
		n.pollCerts(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// cursor reads a cursor; the first start begins at now (history is not
// replayed).
func (n *Notifier) cursor(ctx context.Context, name string) (int64, error) {
	v, ok, err := n.o.Store.NotifyCursor(ctx, name)
	if err != nil || ok {
		return v, err
	}
	v = time.Now().UnixNano()
	return v, n.o.Store.SetNotifyCursor(ctx, name, v)
}

// saveCursor records that what came before after was handed to Emit. It
// is written even when ctx has just ended (a server stopping): the
// deliveries already started may have reached their receivers, and a
// cursor left behind would have the next start send them again.
func (n *Notifier) saveCursor(ctx context.Context, name string, after int64) {
	if err := n.o.Store.SetNotifyCursor(context.WithoutCancel(ctx), name, after); err != nil {
		n.log.Error("notify: save the cursor; what it passed may be sent again after a restart", "cursor", name, "err", err)
	}
}

func (n *Notifier) pollDeploys(ctx context.Context, after int64) int64 {
	ds, err := n.o.Store.DeploysEndedAfter(ctx, after, 100)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Error("notify: read deploys", "err", err)
		}
		return after
	}
	for _, d := range ds {
		if ev, ok := deployNotification(d); ok {
			n.Emit(ctx, ev)
		}
		after = d.EndedAt
	}
	if len(ds) > 0 {
		n.saveCursor(ctx, cursorDeploys, after)
	}
	return after
}

// deployNotification is the notification of a finished deploy: deploys (and
// rollbacks asked for) that succeeded or failed, and those the monitor
// rolled back. Config changes and scaling that succeed are not news.
func deployNotification(d store.FinishedDeploy) (Notification, bool) {
	ev := Notification{ID: fmt.Sprintf("deploy-%d", d.ID), App: d.App, Deploy: d.ID, Release: store.ReleaseID(d.Release), Time: time.Unix(0, d.EndedAt)}
	what := d.Kind
	switch {
	case d.Kind == store.KindPipeline && (d.Status == store.DeploySucceeded || d.Child != 0):
		// Its deploy stage's own record tells of the deploy (a pipeline
		// that failed earlier deployed nothing, and is news itself).
		return Notification{}, false
	case d.Status == store.DeployRolledBack:
		ev.Event = EventDeployRolledBack
		ev.Title = fmt.Sprintf("%s: %s #%d of %s was rolled back automatically", d.App, what, d.ID, store.ReleaseID(d.Release))
	case d.Status == store.DeployFailed:
		ev.Event = EventDeployFailed
		ev.Title = fmt.Sprintf("%s: %s #%d failed", d.App, what, d.ID)
	case d.Status == store.DeploySucceeded && (d.Kind == store.KindDeploy || d.Kind == store.KindRollback):
		ev.Event = EventDeploySucceeded
		ev.Title = fmt.Sprintf("%s: %s #%d succeeded, %s is active", d.App, what, d.ID, store.ReleaseID(d.Release))
	default:
		return Notification{}, false
	}
	var detail []string
	if d.Reason != "" {
		detail = append(detail, d.Reason)
	}
	if d.Owner != "" {
		detail = append(detail, "by "+d.Owner)
	}
	ev.Detail = strings.Join(detail, "\n")
	return ev, true
}

func (n *Notifier) pollBackups(ctx context.Context, after int64) int64 {
	bs, err := n.o.Store.BackupsFailedAfter(ctx, after, 100)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Error("notify: read backups", "err", err)
		}
		return after
	}
	for _, b := range bs {
		after = b.FinishedAt
		if b.Trigger != "schedule" {
			continue // whoever asked saw it fail
		}
		n.Emit(ctx, Notification{ID: "backup-" + b.ID, Event: EventBackupFailed, App: b.App, Time: time.Unix(0, b.FinishedAt),
			Title:  fmt.Sprintf("%s: scheduled backup of %s %s failed", b.App, b.Kind, b.Target),
			Detail: b.Error})
	}
	if len(bs) > 0 {
		n.saveCursor(ctx, cursorBackups, after)
	}
	return after
}

// pollCerts notifies each new failure to obtain or renew a certificate
// (the manager keeps the last error of each; this process's view only).
func (n *Notifier) pollCerts(ctx context.Context) {
	if n.o.Certs == nil {
		return
	}
	for _, c := range n.o.Certs.List() {
		if c.LastError == "" || c.LastErrorAt.IsZero() {
			continue
		}
		name := strings.Join(c.Names, ",")
		if !c.LastErrorAt.After(n.certs[name]) {
			continue
		}
		n.certs[name] = c.LastErrorAt
		n.Emit(ctx, Notification{ID: fmt.Sprintf("cert-%s-%d", name, c.LastErrorAt.UnixNano()), Event: EventCertFailed, App: c.App, Time: c.LastErrorAt,
			Title:  fmt.Sprintf("%s: certificate for %s could not be obtained or renewed", c.App, name),
			Detail: c.LastError})
	}
}
