// Package metrics exposes moorage's own state to Prometheus, beside the
// proxy's request metrics: deploys (outcome, duration, duration per step),
// the last successful backup of each app's volume or database (age,
// verified or not), certificate expiry, instance crashes and restarts, and
// notifier failures. The deploy and backup figures are read from the
// store at each scrape, so they survive a server restart; crashes,
// restarts and notifier failures are counted by this server process.
package metrics

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// counterVec is a counter with labels, safe for concurrent use.
type counterVec struct {
	mu sync.Mutex
	m  map[string]float64 // joined label values → value
}

func (c *counterVec) add(v float64, labels ...string) {
	k := strings.Join(labels, "\x00")
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]float64{}
	}
	c.m[k] += v
	c.mu.Unlock()
}

// snapshot returns the label values and values, sorted by labels.
func (c *counterVec) snapshot() ([][]string, []float64) {
	c.mu.Lock()
	keys := make([]string, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([]float64, len(keys))
	for i, k := range keys {
		vals[i] = c.m[k]
	}
	c.mu.Unlock()
	labels := make([][]string, len(keys))
	for i, k := range keys {
		labels[i] = strings.Split(k, "\x00")
	}
	return labels, vals
}

// notifierFailures counts failed notifications (moorage_notifier_failures_total).
var notifierFailures counterVec

// NotifierFailed counts a notification that could not be delivered: app
// is the app it was about ("" for the server's own), kind the notifier
// ("webhook", "email", "slack", ...). Safe for concurrent use.
func NotifierFailed(app, kind string) { notifierFailures.add(1, app, kind) }

// CertLister lists certificates (certs.Manager).
type CertLister interface{ List() []certs.Info }

// Collector gathers moorage's metrics. Create it with New; Watch feeds it
// the runtimes' events.
type Collector struct {
	st    *store.Store
	certs CertLister // nil: HTTPS off
	now   func() time.Time

	crashes, restarts counterVec

	mu      sync.Mutex // serializes scrapes (the deploy tally below)
	scanned bool       // the first tally (of every recorded deploy) is done
	// Per app: every deploy below floor is counted; seen holds the counted
	// ones at or above it (a deploy still running keeps the floor below
	// it). So the bookkeeping stays small however many deploys there were.
	floor   map[string]int64
	seen    map[string]map[int64]bool
	deploys counterVec               // app, kind, status
	dur     map[string]*histogram    // app\x00kind\x00status → deploy durations
	steps   map[string]*histogram    // app\x00step → step durations
	last    map[string]lastDeployRec // app → the last finished deploy
}

type lastDeployRec struct {
	id     int64
	ended  time.Time
	status string
}

// New returns a collector reading st and, if not nil, certificates from c.
func New(st *store.Store, c CertLister) *Collector {
	col := &Collector{st: st, now: time.Now, floor: map[string]int64{}, seen: map[string]map[int64]bool{},
		dur: map[string]*histogram{}, steps: map[string]*histogram{}, last: map[string]lastDeployRec{}}
	if c != nil {
		col.certs = c
	}
	return col
}

// Watch counts the crashes and restarts of ch's instances until ch closes.
func (c *Collector) Watch(ch <-chan runtime.InstanceEvent) {
	for ev := range ch {
		switch ev.Type {
		case runtime.EventCrash:
			c.crashes.add(1, ev.App, ev.Service)
		case runtime.EventRestart:
			c.restarts.add(1, ev.App, ev.Service)
		}
	}
}

// Handler serves the metrics in Prometheus's text format, after those of
// before (the proxy's handler) when it is not nil.
func (c *Collector) Handler(before http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if before != nil {
			before.ServeHTTP(w, r)
		} else {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		}
		bw := bufio.NewWriter(w)
		c.Write(r.Context(), bw)
		_ = bw.Flush()
	})
}

// durationBuckets (seconds) of the deploy and step histograms: a step may
// take milliseconds (routing) or many minutes (a build).
var durationBuckets = []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}

type histogram struct {
	counts []uint64 // per bucket, the last one +Inf
	sum    float64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(durationBuckets)+1)
	}
	i := 0
	for i < len(durationBuckets) && v > durationBuckets[i] {
		i++
	}
	h.counts[i]++
	h.sum += v
}

// tallyDeploys counts the deploys that finished since the last scrape
// (every recorded one at the first).
func (c *Collector) tallyDeploys(ctx context.Context, apps []*store.App) {
	for _, a := range apps {
		limit := 50
		if !c.scanned {
			limit = 100000
		}
		for {
			ds, err := c.st.ListDeploys(ctx, a.Name, limit)
			if err != nil {
				break
			}
			seen := c.seen[a.Name]
			if seen == nil {
				seen = map[int64]bool{}
				c.seen[a.Name] = seen
			}
			fresh := 0
			// The new floor: past the newest, or the oldest still running.
			floor := int64(0)
			if len(ds) > 0 {
				floor = ds[0].ID + 1
			}
			for _, d := range ds {
				if d.Status == store.DeployRunning || d.EndedAt.IsZero() {
					floor = min(floor, d.ID)
				}
				if d.ID < c.floor[a.Name] || seen[d.ID] {
					continue
				}
				fresh++
				if d.Status == store.DeployRunning || d.EndedAt.IsZero() {
					continue // counted once it ends
				}
				seen[d.ID] = true
				c.deploys.add(1, d.App, d.Kind, d.Status)
				k := d.App + "\x00" + d.Kind + "\x00" + d.Status
				if c.dur[k] == nil {
					c.dur[k] = &histogram{}
				}
				c.dur[k].observe(d.EndedAt.Sub(d.StartedAt).Seconds())
				for _, s := range d.Steps {
					if s.EndedAt.IsZero() {
						continue
					}
					k := d.App + "\x00" + s.Name
					if c.steps[k] == nil {
						c.steps[k] = &histogram{}
					}
					c.steps[k].observe(s.EndedAt.Sub(s.StartedAt).Seconds())
				}
				if l := c.last[d.App]; d.ID > l.id {
					c.last[d.App] = lastDeployRec{id: d.ID, ended: d.EndedAt, status: d.Status}
				}
			}
			// All of them new: older ones may be unseen too.
			if fresh < len(ds) || len(ds) < limit || limit >= 100000 {
				if floor > c.floor[a.Name] {
					c.floor[a.Name] = floor
					for id := range seen {
						if id < floor {
							delete(seen, id)
						}
					}
				}
				break
			}
			limit *= 8
		}
	}
	c.scanned = true
	// Forget what was kept of apps that are gone.
	for name := range c.seen {
		if !slices.ContainsFunc(apps, func(a *store.App) bool { return a.Name == name }) {
			delete(c.seen, name)
			delete(c.floor, name)
		}
	}
}

// Write writes the metrics.
func (c *Collector) Write(ctx context.Context, w *bufio.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := expo{w}
	apps, _ := c.st.ListApps(ctx)
	c.tallyDeploys(ctx, apps)
	now := c.now()

	e.header("moorage_deploys_total", "counter", "Finished operations (deploy, rollback, scale, config, recover, ...) by app, kind and outcome (succeeded, failed, rolled_back, ...), as recorded in the store.")
	labels, vals := c.deploys.snapshot()
	for i, l := range labels {
		e.sample("moorage_deploys_total", []string{"app", l[0], "kind", l[1], "status", l[2]}, vals[i])
	}
	e.header("moorage_deploy_duration_seconds", "histogram", "Time from an operation's start to its end, by app, kind and outcome.")
	for _, k := range sortedKeys(c.dur) {
		l := strings.Split(k, "\x00")
		e.histogram("moorage_deploy_duration_seconds", []string{"app", l[0], "kind", l[1], "status", l[2]}, c.dur[k])
	}
	e.header("moorage_deploy_step_duration_seconds", "histogram", "Time each journaled step of a finished operation took (build, release, start, health, cutover, drain, ...), by app and step.")
	for _, k := range sortedKeys(c.steps) {
		l := strings.Split(k, "\x00")
		e.histogram("moorage_deploy_step_duration_seconds", []string{"app", l[0], "step", l[1]}, c.steps[k])
	}
	e.header("moorage_deploy_last_status", "gauge", "1 for the outcome of the app's last finished operation (the status label), by app.")
	e.header("moorage_deploy_last_end_timestamp_seconds", "gauge", "When the app's last finished operation ended (Unix time).")
	for _, app := range sortedKeys(c.last) {
		l := c.last[app]
		e.sample("moorage_deploy_last_status", []string{"app", app, "status", l.status}, 1)
		e.sample("moorage_deploy_last_end_timestamp_seconds", []string{"app", app}, unix(l.ended))
	}

	c.writeBackups(ctx, e, apps, now)
	c.writeCerts(e, now)

	e.header("moorage_instance_crashes_total", "counter", "Instances that exited without being asked to (this server process), by app and service.")
	labels, vals = c.crashes.snapshot()
	for i, l := range labels {
		e.sample("moorage_instance_crashes_total", []string{"app", l[0], "service", l[1]}, vals[i])
	}
	e.header("moorage_instance_restarts_total", "counter", "Instances restarted after a crash (this server process), by app and service.")
	labels, vals = c.restarts.snapshot()
	for i, l := range labels {
		e.sample("moorage_instance_restarts_total", []string{"app", l[0], "service", l[1]}, vals[i])
	}
	e.header("moorage_notifier_failures_total", "counter", "Notifications that could not be delivered (this server process), by app and notifier kind.")
	labels, vals = notifierFailures.snapshot()
	for i, l := range labels {
		e.sample("moorage_notifier_failures_total", []string{"app", l[0], "kind", l[1]}, vals[i])
	}
}

// writeBackups writes, per app and backed-up target (a volume, a
// database), the last successful backup: when, how old, verified or not.
func (c *Collector) writeBackups(ctx context.Context, e expo, apps []*store.App, now time.Time) {
	type key struct{ app, kind, target string }
	last := map[key]*store.Backup{}
	var keys []key
	for _, a := range apps {
		bs, err := c.st.ListBackups(ctx, a.Name)
		if err != nil {
			continue
		}
		for _, b := range bs {
			if b.Status != store.BackupOK {
				continue
			}
			k := key{b.App, b.Kind, b.Target}
			if cur := last[k]; cur == nil {
				keys = append(keys, k)
				last[k] = b
			} else if b.FinishedAt.After(cur.FinishedAt) {
				last[k] = b
			}
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		return strings.Compare(a.app+"\x00"+a.kind+"\x00"+a.target, b.app+"\x00"+b.kind+"\x00"+b.target)
	})
	e.header("moorage_backup_last_success_timestamp_seconds", "gauge", "When the last successful backup of the target (volume or database) finished (Unix time).")
	for _, k := range keys {
		e.sample("moorage_backup_last_success_timestamp_seconds", []string{"app", k.app, "kind", k.kind, "target", k.target}, unix(last[k].FinishedAt))
	}
	e.header("moorage_backup_last_success_age_seconds", "gauge", "Age of the last successful backup of the target.")
	for _, k := range keys {
		e.sample("moorage_backup_last_success_age_seconds", []string{"app", k.app, "kind", k.kind, "target", k.target}, now.Sub(last[k].FinishedAt).Seconds())
	}
	e.header("moorage_backup_last_success_verified", "gauge", "1 when the last successful backup of the target was verified (moorage backup verify: restored and checked), 0 when not, or when its verification failed.")
	for _, k := range keys {
		b := last[k]
		v := 0.0
		if !b.VerifiedAt.IsZero() && b.VerifyError == "" {
			v = 1
		}
		e.sample("moorage_backup_last_success_verified", []string{"app", k.app, "kind", k.kind, "target", k.target}, v)
	}
}

// writeCerts writes when each certificate in use expires.
func (c *Collector) writeCerts(e expo, now time.Time) {
	e.header("moorage_certificate_expiry_timestamp_seconds", "gauge", "When the certificate expires (Unix time), by app, first name it covers, mode (auto, internal, files) and status.")
	e.header("moorage_certificate_expires_in_seconds", "gauge", "Time left until the certificate expires (negative: expired).")
	if c.certs == nil {
		return
	}
	for _, in := range c.certs.List() {
		if in.NotAfter.IsZero() || len(in.Names) == 0 {
			continue
		}
		l := []string{"app", in.App, "name", in.Names[0], "mode", in.Mode, "status", in.Status}
		e.sample("moorage_certificate_expiry_timestamp_seconds", l, unix(in.NotAfter))
		e.sample("moorage_certificate_expires_in_seconds", l, in.NotAfter.Sub(now).Seconds())
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// expo writes the Prometheus text exposition format (0.0.4).
type expo struct{ w *bufio.Writer }

func (e expo) header(name, typ, help string) {
	e.w.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

func (e expo) sample(name string, labels []string, v float64) {
	e.w.WriteString(name)
	if len(labels) > 0 {
		e.w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				e.w.WriteByte(',')
			}
			e.w.WriteString(labels[i])
			e.w.WriteString(`="`)
			e.w.WriteString(labelEscaper.Replace(labels[i+1]))
			e.w.WriteByte('"')
		}
		e.w.WriteByte('}')
	}
	e.w.WriteByte(' ')
	e.w.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	e.w.WriteByte('\n')
}

func (e expo) histogram(name string, labels []string, h *histogram) {
	var cum uint64
	for i, n := range h.counts {
		cum += n
		le := "+Inf"
		if i < len(durationBuckets) {
			le = strconv.FormatFloat(durationBuckets[i], 'g', -1, 64)
		}
		e.sample(name+"_bucket", append(slices.Clone(labels), "le", le), float64(cum))
	}
	e.sample(name+"_sum", labels, h.sum)
	e.sample(name+"_count", labels, float64(cum))
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
