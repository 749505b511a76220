// Command helm measures, side by side on one single-node Kubernetes
// cluster (internal/testutil/kubetest), a Helm chart of examples/hello
// written the way people write them (Deployments web, worker and beat with
// the default RollingUpdate, a Service, a ConfigMap, a pre-upgrade hook Job
// running the migration and a pre-rollback hook Job; bench/helm/chart) and
// moorage's kubernetes runtime (`moorage server --kube-config …`, the app
// deployed with --runtime kubernetes), on the same app, Dockerfile and
// binary:
//
//	a. singleton overlap: over -upgrades upgrades, every beat/scheduler pod
//	   created while another still existed (the cluster's own pod watch),
//	   and how long two of them ran at once;
//	b. web/worker switch: from the first new web pod Ready to the last old
//	   worker pod gone, per upgrade (how long both releases run at once);
//	c. a failing migration: what each leaves running;
//	d. a migration followed by a failure (web never healthy): what each
//	   rolls back to, what the rollback runs (Helm's pre-rollback hook and
//	   its image) and the schema left behind.
//
// Run as root (the cluster's kubelet and containerd), from the repository:
//
//	go run ./bench/helm                    # 3 upgrades each
//	go run ./bench/helm -upgrades 5
//	go run ./bench/helm -beat-shared-lock  # the example's scheduler lock shared by the beat pods
//
// The chart gives each beat pod a lock file of its own, as celery beat
// keeps none between pods; with -beat-shared-lock the new beat pod exits
// while the old one holds the lock and the first upgrade fails after
// Helm's timeout (5m), which ends the bench.
//
// Helm itself (helm.sh/helm/v4 v4.3.2) is installed from the Go module
// proxy into ~/.cache/moorage-helm/bin on the first run (`go install`), or
// taken from -helm. It exits non-zero, with the reason, when the cluster
// cannot start, and never runs longer than -timeout.
package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/moorage/moorage/bench/internal/hello"
	"github.com/moorage/moorage/internal/testutil/kubetest"
)

//go:embed all:chart
var chartFS embed.FS

const (
	helmVersion = "v4.3.2"
	helmNS      = "helm-bench"
	helmRel     = "hello"
	// helmDefaultTimeout is helm's own --timeout: upgrades run without
	// the flag.
	helmDefaultTimeout = 5 * time.Minute
)

type config struct {
	upgrades   int
	timeout    time.Duration
	helmBin    string
	moorageBin string
	keep       bool
	wait       time.Duration
	sharedLock bool
}

func main() {
	var c config
	flag.IntVar(&c.upgrades, "upgrades", 3, "upgrades (Helm) and deploys (moorage) watched for scenarios a and b")
	flag.DurationVar(&c.timeout, "timeout", 40*time.Minute, "give up after this long")
	flag.StringVar(&c.helmBin, "helm", "", "use this helm binary instead of ~/.cache/moorage-helm/bin/helm (installed there when missing)")
	flag.StringVar(&c.moorageBin, "moorage", "", "use this moorage binary instead of building one")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory")
	flag.BoolVar(&c.sharedLock, "beat-shared-lock", false, "give the chart's beat pods the whole shared data directory, so the example's own scheduler lock is shared (the new beat then exits while the old holds it, and the upgrade waits out helm's timeout)")
	flag.DurationVar(&c.wait, "cluster-wait", 15*time.Minute, "how long to wait for another kubetest cluster on this machine to stop (one runs at a time)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	start := time.Now()
	r, err := run(c)
	if r != nil {
		fmt.Print(r.markdown(c, time.Since(start)))
	}
	if err != nil {
		log.Fatal(err)
	}
}

// ---- the pod watch ----

// podRec is one pod as the watch saw it, times as observed here.
type podRec struct {
	ns, name     string
	labels       map[string]string
	image        string
	added, ready time.Time
	deleted      time.Time
}

// watch records every pod of the cluster.
type watch struct {
	mu   sync.Mutex
	pods map[string]*podRec // ns/name
}

func startWatch(ctx context.Context, k *kubetest.Cluster) (*watch, error) {
	w := &watch{pods: map[string]*podRec{}}
	f := informers.NewSharedInformerFactory(k.Client, 0)
	inf := f.Core().V1().Pods().Informer()
	seen := func(obj any, deleted bool) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		key := p.Namespace + "/" + p.Name
		r := w.pods[key]
		if r == nil {
			r = &podRec{ns: p.Namespace, name: p.Name, labels: p.Labels, added: now}
			if len(p.Spec.Containers) > 0 {
				r.image = p.Spec.Containers[0].Image
			}
			w.pods[key] = r
		}
		if r.ready.IsZero() && podReady(p) {
			r.ready = now
		}
		if deleted {
			r.deleted = now
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { seen(o, false) },
		UpdateFunc: func(_, o any) { seen(o, false) },
		DeleteFunc: func(o any) { seen(o, true) },
	}); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(sctx.Done(), inf.HasSynced) {
		return nil, errors.New("the pod watch never synced")
	}
	return w, nil
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// side says how to read one side's pods: its namespace, and the labels
// naming a pod's service and release.
type side struct {
	name, ns           string
	svcLabel, relLabel string
	web, worker, beat  string // service names
	isTask             func(p *podRec) bool
}

func (w *watch) list(s side, keep func(*podRec) bool) []podRec {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []podRec
	for _, p := range w.pods {
		if p.ns == s.ns && keep(p) {
			out = append(out, *p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].added.Before(out[j].added) })
	return out
}

// overlap counts the pods of service svc created in [from, to) while
// another of svc still existed, and the total time two ran at once
// (both past Ready, the older not yet gone).
func (w *watch) overlap(s side, svc string, from, to time.Time) (pods, created int, both time.Duration, detail []string) {
	ps := w.list(s, func(p *podRec) bool { return p.labels[s.svcLabel] == svc && !s.isTask(p) })
	now := time.Now()
	for i, p := range ps {
		if p.added.Before(from) || !p.added.Before(to) {
			continue
		}
		pods++
		for j, q := range ps {
			if j == i || !q.added.Before(p.added) {
				continue
			}
			if q.deleted.IsZero() || q.deleted.After(p.added) {
				created++
				detail = append(detail, fmt.Sprintf("%s created while %s existed", p.name, q.name))
				if !p.ready.IsZero() && !q.ready.IsZero() {
					end := q.deleted
					if end.IsZero() {
						end = now
					}
					if pe := p.deleted; !pe.IsZero() && pe.Before(end) {
						end = pe
					}
					if d := end.Sub(later(p.ready, q.ready)); d > 0 {
						both += d
					}
				}
				break
			}
		}
	}
	return pods, created, both, detail
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// during says, per service, how many pods matching isNew were created in
// [from, to] by release (and how many of those became Ready by to), and
// how many pods that existed before from were gone by to.
func (w *watch) during(s side, from, to time.Time, isNew func(p *podRec) bool) string {
	var parts []string
	for _, svc := range []string{s.web, s.worker, s.beat} {
		created, ready := map[string]int{}, map[string]int{}
		stopped := 0
		for _, p := range w.list(s, func(p *podRec) bool { return p.labels[s.svcLabel] == svc && !s.isTask(p) }) {
			if !p.added.Before(from) && !p.added.After(to) && isNew(&p) {
				created[p.labels[s.relLabel]]++
				if !p.ready.IsZero() && !p.ready.After(to) {
					ready[p.labels[s.relLabel]]++
				}
			}
			if p.added.Before(from) && !p.deleted.IsZero() && p.deleted.After(from) && !p.deleted.After(to) {
				stopped++
			}
		}
		var rels []string
		for rel, n := range created {
			rels = append(rels, fmt.Sprintf("%d of %s (%d)", n, rel, ready[rel]))
		}
		sort.Strings(rels)
		if len(rels) == 0 {
			rels = []string{"0"}
		}
		parts = append(parts, fmt.Sprintf("%s %s / %d", svc, strings.Join(rels, " + "), stopped))
	}
	return strings.Join(parts, ", ")
}

// switchWindow is, for the upgrade from release oldRel to newRel, the time
// from the first new web pod Ready to the last old worker pod gone; ok is
// false when a pod it needs was not seen.
func (w *watch) switchWindow(s side, oldRel, newRel string) (d time.Duration, ok bool) {
	var webReady, workerGone time.Time
	for _, p := range w.list(s, func(p *podRec) bool { return !s.isTask(p) }) {
		switch {
		case p.labels[s.svcLabel] == s.web && p.labels[s.relLabel] == newRel && !p.ready.IsZero():
			if webReady.IsZero() || p.ready.Before(webReady) {
				webReady = p.ready
			}
		case p.labels[s.svcLabel] == s.worker && p.labels[s.relLabel] == oldRel:
			if p.deleted.IsZero() {
				return 0, false
			}
			if p.deleted.After(workerGone) {
				workerGone = p.deleted
			}
		}
	}
	if webReady.IsZero() || workerGone.IsZero() {
		return 0, false
	}
	return workerGone.Sub(webReady), true
}

// settle waits until each of the side's services has exactly want pods
// that are not gone, so that an upgrade's leftovers do not count in the next.
func (w *watch) settle(ctx context.Context, s side, want map[string]int) error {
	return poll(ctx, 3*time.Minute, func() error {
		got := map[string]int{}
		for _, p := range w.list(s, func(p *podRec) bool { return p.deleted.IsZero() && !s.isTask(p) }) {
			got[p.labels[s.svcLabel]]++
		}
		for svc, n := range want {
			if got[svc] != n {
				return fmt.Errorf("%s has %d pods, want %d", svc, got[svc], n)
			}
		}
		return nil
	})
}

func poll(ctx context.Context, timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ---- results ----

type sideResult struct {
	upgrades    int
	beatPods    int
	overlaps    int
	both        time.Duration
	overDetail  []string
	switches    []time.Duration
	upgradeTime []time.Duration

	failExit    string // c: how the upgrade/deploy ended
	failNewPods int    // c: pods of the new release's services created (not the migration's)
	failServing string // c: what serves afterwards
	failLeft    string // c: what else is left
	rbExit      string // d
	rbNewPods   int    // d: new-release service pods created
	rbPods      string // d: per service: new pods created (Ready), old pods stopped
	rbHook      string // d: what the rollback ran
	rbSchema    string // d: schema afterwards
	rbServing   string // d
}

type result struct {
	date      time.Time
	helm      sideResult
	moorage   sideResult
	clusterUp time.Duration
	notes     []string
}

func (r *result) markdown(c config, wall time.Duration) string {
	var b strings.Builder
	h, m := r.helm, r.moorage
	fmt.Fprintf(&b, "\n## Helm %s ÷ moorage on one kubetest cluster (%s, %d upgrades each, wall %s)\n\n", helmVersion, r.date.Format("2006-01-02 15:04 MST"), c.upgrades, wall.Round(time.Second))
	fmt.Fprintf(&b, "| | Helm chart (pre-upgrade hook) | moorage --runtime kubernetes | Helm ÷ moorage |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| a. beat/scheduler pods created while another existed | %d of %d | %d of %d | %s |\n", h.overlaps, h.beatPods, m.overlaps, m.beatPods, ratio(float64(h.overlaps), float64(m.overlaps)))
	fmt.Fprintf(&b, "| a. time two beat/scheduler pods ran at once (total) | %s | %s | %s |\n", h.both.Round(time.Millisecond), m.both.Round(time.Millisecond), ratio(h.both.Seconds(), m.both.Seconds()))
	fmt.Fprintf(&b, "| b. first new web Ready → last old worker gone (median; max) | %s | %s | %s |\n", durs(h.switches), durs(m.switches), ratio(median(h.switches).Seconds(), median(m.switches).Seconds()))
	fmt.Fprintf(&b, "| upgrade / deploy wall time (median) | %s | %s | %s |\n", median(h.upgradeTime).Round(100*time.Millisecond), median(m.upgradeTime).Round(100*time.Millisecond), ratio(median(h.upgradeTime).Seconds(), median(m.upgradeTime).Seconds()))
	fmt.Fprintf(&b, "| c. failing migration: the command | %s | %s | |\n", h.failExit, m.failExit)
	fmt.Fprintf(&b, "| c. pods of the new release's services created | %d | %d | |\n", h.failNewPods, m.failNewPods)
	fmt.Fprintf(&b, "| c. serving afterwards | %s | %s | |\n", h.failServing, m.failServing)
	fmt.Fprintf(&b, "| c. also left | %s | %s | |\n", h.failLeft, m.failLeft)
	fmt.Fprintf(&b, "| d. migration 003 applied, then web never healthy: the command | %s | %s | |\n", h.rbExit, m.rbExit)
	fmt.Fprintf(&b, "| d. pods of the new release's services created | %d | %d | |\n", h.rbNewPods, m.rbNewPods)
	fmt.Fprintf(&b, "| d. per service, until the command returned: pods created, by release (of them Ready) / old pods stopped | %s | %s | |\n", h.rbPods, m.rbPods)
	fmt.Fprintf(&b, "| d. what the rollback ran | %s | %s | |\n", h.rbHook, m.rbHook)
	fmt.Fprintf(&b, "| d. schema afterwards (running code knows up to 002) | %s | %s | |\n", h.rbSchema, m.rbSchema)
	fmt.Fprintf(&b, "| d. serving afterwards | %s | %s | |\n", h.rbServing, m.rbServing)
	fmt.Fprintf(&b, "\nCluster start: %s.\n", r.clusterUp.Round(100*time.Millisecond))
	for _, d := range h.overDetail {
		fmt.Fprintf(&b, "- Helm: %s\n", d)
	}
	for _, d := range m.overDetail {
		fmt.Fprintf(&b, "- moorage: %s\n", d)
	}
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	return b.String()
}

func ratio(a, b float64) string {
	switch {
	case a == 0 && b == 0:
		return "–"
	case b == 0:
		return "∞ (moorage 0)"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func durs(ds []time.Duration) string {
	if len(ds) == 0 {
		return "n/a"
	}
	mx := ds[0]
	for _, d := range ds {
		mx = max(mx, d)
	}
	return fmt.Sprintf("%s; %s", median(ds).Round(10*time.Millisecond), mx.Round(10*time.Millisecond))
}

// ---- the run ----

func run(c config) (*result, error) {
	if err := kubetest.Requirements(); err != nil {
		return nil, fmt.Errorf("cannot start a cluster here: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	root, err := hello.RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := hello.TempDir("moorage-helm-bench-")
	if err != nil {
		return nil, err
	}
	if c.keep {
		log.Printf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	helmBin, err := ensureHelm(ctx, c.helmBin)
	if err != nil {
		return nil, err
	}
	bin := c.moorageBin
	if bin == "" {
		if bin, err = hello.Build(root, dir); err != nil {
			return nil, err
		}
	}
	binDir, err := kubetest.Binaries(ctx, log.Printf)
	if err != nil {
		return nil, fmt.Errorf("kubetest binaries: %w", err)
	}
	if err := waitClusterLock(ctx, c.wait); err != nil {
		return nil, err
	}
	log.Printf("starting the cluster…")
	sctx, scancel := context.WithTimeout(ctx, c.wait+5*time.Minute)
	k, err := kubetest.StartCluster(sctx, binDir, log.Printf)
	scancel()
	if k != nil {
		defer func() {
			if err := k.Stop(); err != nil {
				log.Printf("stop the cluster: %v", err)
			}
		}()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot start the cluster: %w", err)
	}
	if k.Registry == "" {
		return nil, errors.New("the cluster has no registry (apt-get install docker-registry)")
	}
	r := &result{date: time.Now().UTC(), clusterUp: k.StartTime}
	w, err := startWatch(ctx, k)
	if err != nil {
		return r, err
	}
	if err := runHelm(ctx, c, r, w, k, root, dir, helmBin); err != nil {
		return r, fmt.Errorf("helm: %w", err)
	}
	if err := runMoorage(ctx, c, r, w, k, root, dir, bin); err != nil {
		return r, fmt.Errorf("moorage: %w", err)
	}
	return r, nil
}

// waitClusterLock waits, in the kernel rather than by polling, until no
// other kubetest cluster runs on this machine (kubetest's lock), then
// lets it go for StartCluster to take at once: the e2e tests poll the lock
// twice a second, so a polling benchmark would wait behind all of them.
func waitClusterLock(ctx context.Context, wait time.Duration) error {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "moorage-kubetest.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		return f.Close()
	}
	log.Printf("waiting up to %s for another kubetest cluster on this machine to stop…", wait)
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-done:
		f.Close()
		return err
	case <-time.After(wait):
		return fmt.Errorf("another kubetest cluster still runs on this machine after %s (-cluster-wait)", wait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ensureHelm returns a helm binary: -helm, or the cached one, installed
// with `go install` from the module proxy when missing.
func ensureHelm(ctx context.Context, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	gobin := filepath.Join(home, ".cache", "moorage-helm", "bin")
	helm := filepath.Join(gobin, "helm")
	// `go install` does not stamp helm's own version (it says "v4.3"):
	// the module's is in the binary's build info.
	if out, err := exec.CommandContext(ctx, "go", "version", "-m", helm).Output(); err == nil && strings.Contains(string(out), "helm.sh/helm/v4\t"+helmVersion) {
		return helm, nil
	}
	log.Printf("installing helm %s into %s (go install, once)…", helmVersion, gobin)
	cmd := exec.CommandContext(ctx, "go", "install", "helm.sh/helm/v4/cmd/helm@"+helmVersion)
	cmd.Dir = os.TempDir() // outside this module: helm is not one of its dependencies
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install helm: %w", err)
	}
	return helm, nil
}

// buildImage builds examples/hello (copied to dir with message msg and,
// with migration003, a third migration) as image ref and pushes it.
func buildImage(ctx context.Context, root, dir, ref, msg string, migration003 bool) error {
	app := filepath.Join(dir, "img-"+strings.NewReplacer(":", "-", "/", "-").Replace(ref))
	if err := hello.Copy(filepath.Join(root, "examples", "hello"), app, true); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(app, "message.txt"), []byte(msg+"\n"), 0o644); err != nil {
		return err
	}
	if migration003 {
		if err := addMigration003(app); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"go", "build", "-o", "hello", "."},
		{"docker", "build", "-q", "-t", ref, "."},
		{"docker", "push", "-q", ref},
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s[0], s[1:]...)
		cmd.Dir = app
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}

func addMigration003(app string) error {
	return os.WriteFile(filepath.Join(app, "migrations", "003_add_jobs_priority.txt"), []byte("add a priority to every job\n"), 0o644)
}

func schemaVersion(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	var s struct {
		Version int `json:"version"`
		Applied []struct {
			ID string `json:"id"`
		} `json:"applied"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return "unparsable"
	}
	return fmt.Sprintf("version %d", s.Version)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 140 {
		s = s[:140] + "…"
	}
	return s
}

func exitText(err error, out string) string {
	if err == nil {
		return "exit 0"
	}
	return fmt.Sprintf("failed (%s)", strings.ReplaceAll(lastLine(out), "|", "/"))
}

// ---- Helm ----

func runHelm(ctx context.Context, c config, r *result, w *watch, k *kubetest.Cluster, root, dir, helmBin string) error {
	chart := filepath.Join(dir, "chart")
	sub, _ := fs.Sub(chartFS, "chart")
	if err := os.CopyFS(chart, sub); err != nil {
		return err
	}
	data := filepath.Join(dir, "helm-data")
	if err := os.MkdirAll(data, 0o777); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(data, "queue"), 0o777); err != nil {
		return err
	}
	for _, d := range []string{data, filepath.Join(data, "queue")} {
		if err := os.Chmod(d, 0o777); err != nil {
			return err
		}
	}
	repo := k.Registry + "/helm-hello"
	log.Printf("helm: building and pushing %d images to %s…", c.upgrades+3, repo)
	for i := 0; i <= c.upgrades+1; i++ {
		if err := buildImage(ctx, root, dir, fmt.Sprintf("%s:%d", repo, i), fmt.Sprintf("helm %d", i), false); err != nil {
			return err
		}
	}
	if err := buildImage(ctx, root, dir, repo+":m3", "helm m3", true); err != nil {
		return err
	}
	s := side{name: "helm", ns: helmNS, svcLabel: "app.kubernetes.io/component", relLabel: "bench/rev",
		web: "web", worker: "worker", beat: "beat",
		isTask: func(p *podRec) bool {
			v := p.labels["app.kubernetes.io/component"]
			return v == "migrate" || v == "pre-rollback"
		}}
	want := map[string]int{"web": 2, "worker": 1, "beat": 1}
	helm := func(timeout time.Duration, args ...string) (string, error) {
		hctx, cancel := context.WithTimeout(ctx, timeout+time.Minute)
		defer cancel()
		args = append(args, "--kubeconfig", k.Kubeconfig, "--kube-context", "kubetest", "-n", helmNS)
		if args[0] == "upgrade" && timeout != helmDefaultTimeout {
			args = append(args, "--timeout", timeout.String()) // else as people run it
		}
		cmd := exec.CommandContext(hctx, helmBin, args...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	upgrade := func(timeout time.Duration, tag string, extra ...string) (string, error) {
		args := append([]string{"upgrade", "--install", "--create-namespace", helmRel, chart, "--wait",
			"--set", "image.repository=" + repo, "--set", "image.tag=" + tag, "--set", "dataDir=" + data,
			"--set", "message=" + tag, "--set", fmt.Sprintf("beat.sharedLock=%t", c.sharedLock)}, extra...)
		return helm(timeout, args...)
	}
	log.Printf("helm: install")
	if out, err := upgrade(helmDefaultTimeout, "0"); err != nil {
		return fmt.Errorf("install: %w\n%s", err, out)
	}
	if err := w.settle(ctx, s, want); err != nil {
		return err
	}

	// a, b
	from := time.Now()
	for i := 1; i <= c.upgrades; i++ {
		log.Printf("helm: upgrade %d", i)
		t0 := time.Now()
		if out, err := upgrade(helmDefaultTimeout, fmt.Sprint(i)); err != nil {
			return fmt.Errorf("upgrade %d: %w\n%s", i, err, out)
		}
		r.helm.upgradeTime = append(r.helm.upgradeTime, time.Since(t0))
		if err := w.settle(ctx, s, want); err != nil {
			return err
		}
		time.Sleep(time.Second)
		// revision 1 is the install: upgrade i is revision i+1
		if d, ok := w.switchWindow(s, fmt.Sprint(i), fmt.Sprint(i+1)); ok {
			r.helm.switches = append(r.helm.switches, d)
		}
	}
	r.helm.upgrades = c.upgrades
	r.helm.beatPods, r.helm.overlaps, r.helm.both, r.helm.overDetail = w.overlap(s, "beat", from, time.Now())
	oldRev := fmt.Sprint(c.upgrades + 1)

	// c: the migration fails
	log.Printf("helm: c. an upgrade whose migration fails")
	t0 := time.Now()
	failTag := fmt.Sprint(c.upgrades + 1)
	out, err := upgrade(helmDefaultTimeout, failTag, "--set", "env.HELLO_MIGRATE_FAIL=1")
	r.helm.failExit = "`helm upgrade --wait` " + exitText(err, out)
	time.Sleep(5 * time.Second)
	r.helm.failNewPods = len(w.list(s, func(p *podRec) bool { return !s.isTask(p) && p.added.After(t0) }))
	r.helm.failServing = helmServing(ctx, w, s, oldRev)
	var jobs []string
	for _, p := range w.list(s, func(p *podRec) bool { return s.isTask(p) && p.added.After(t0) && p.deleted.IsZero() }) {
		jobs = append(jobs, p.name)
	}
	st, _ := helm(30*time.Second, "status", helmRel)
	r.helm.failLeft = fmt.Sprintf("release %s; failed hook pod kept: %s", statusLine(st), strings.Join(jobs, ", "))

	// d: migration 003 applies, then web never becomes healthy; --rollback-on-failure
	log.Printf("helm: d. migration 003, then web unhealthy, --rollback-on-failure")
	if err := w.settle(ctx, s, want); err != nil {
		return err
	}
	t0 = time.Now()
	out, err = upgrade(time.Minute, "m3", "--rollback-on-failure", "--set", "env.HELLO_UNHEALTHY=1")
	r.helm.rbExit = "`helm upgrade --wait --rollback-on-failure` " + exitText(err, out)
	r.helm.rbPods = w.during(s, t0, time.Now(), func(p *podRec) bool { return p.image == repo+":m3" })
	if err := w.settle(ctx, s, want); err != nil {
		r.notes = append(r.notes, "Helm d: pods did not settle: "+err.Error())
	}
	r.helm.rbNewPods = len(w.list(s, func(p *podRec) bool {
		return !s.isTask(p) && p.added.After(t0) && p.image == repo+":m3"
	}))
	var hooks []string
	for _, p := range w.list(s, func(p *podRec) bool { return s.isTask(p) && p.added.After(t0) }) {
		h := fmt.Sprintf("%s hook, image %s", p.labels["app.kubernetes.io/component"], strings.TrimPrefix(p.image, k.Registry+"/"))
		if p.labels["app.kubernetes.io/component"] == "pre-rollback" {
			if logs, err := k.Client.CoreV1().Pods(helmNS).GetLogs(p.name, &corev1.PodLogOptions{}).DoRaw(ctx); err == nil {
				h += fmt.Sprintf(" (it printed %q)", lastLine(string(logs)))
			}
		}
		hooks = append(hooks, h)
	}
	r.helm.rbHook = strings.Join(hooks, "; then ")
	r.helm.rbSchema = schemaVersion(filepath.Join(data, "schema.json"))
	hist, _ := helm(30*time.Second, "history", helmRel)
	r.helm.rbServing = helmServing(ctx, w, s, "") + "; " + statusLine(hist)
	return nil
}

// helmServing says which release's web pods are Ready, and what one of
// them answers at GET / (by pod IP: the cluster has no kube-proxy).
func helmServing(ctx context.Context, w *watch, s side, _ string) string {
	live := w.list(s, func(p *podRec) bool {
		return p.labels[s.svcLabel] == s.web && p.deleted.IsZero() && !p.ready.IsZero()
	})
	revs := map[string]int{}
	for _, p := range live {
		revs["rev "+p.labels[s.relLabel]+" ("+p.image[strings.LastIndex(p.image, ":")+1:]+")"]++
	}
	var parts []string
	for k, n := range revs {
		parts = append(parts, fmt.Sprintf("%d web pods Ready of %s", n, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func statusLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "STATUS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "STATUS:"))
		}
	}
	// history: the last line
	return strings.Join(strings.Fields(lastLine(out)), " ")
}

// ---- moorage ----

func runMoorage(ctx context.Context, c config, r *result, w *watch, k *kubetest.Cluster, root, dir, bin string) error {
	vols := filepath.Join(dir, "moorage-volumes")
	if err := os.MkdirAll(vols, 0o777); err != nil {
		return err
	}
	srv, err := hello.Start(bin, dir, "--kube-config", k.Kubeconfig, "--kube-context", "kubetest",
		"--kube-registry", k.Registry, "--kube-volume-dir", vols)
	if err != nil {
		return err
	}
	defer srv.Stop()
	ns := srv.Prefix + "-hello"
	s := side{name: "moorage", ns: ns, svcLabel: "moorage.service", relLabel: "moorage.release",
		web: "web", worker: "worker", beat: "scheduler",
		isTask: func(p *podRec) bool { return p.labels["moorage.kind"] != "service" }}
	app := filepath.Join(dir, "moorage-hello")
	if err := hello.Copy(filepath.Join(root, "examples", "hello"), app, true); err != nil {
		return err
	}
	spec := filepath.Join(app, "moorage.yaml")
	base, err := os.ReadFile(spec)
	if err != nil {
		return err
	}
	deploy := func(msg, env string, args ...string) (string, error) {
		if err := os.WriteFile(filepath.Join(app, "message.txt"), []byte(msg+"\n"), 0o644); err != nil {
			return "", err
		}
		sp := string(base)
		if env != "" {
			sp = strings.Replace(sp, "release:", "env:\n  "+env+"\nrelease:", 1)
		}
		if err := os.WriteFile(spec, []byte(sp), 0o644); err != nil {
			return "", err
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(dctx, bin, append([]string{"deploy", app, "--runtime", "kubernetes"}, args...)...)
		cmd.Env = srv.Env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	get := func() string {
		res, err := http.Get("http://" + srv.Addr + "/")
		if err != nil {
			return err.Error()
		}
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		for _, f := range strings.Fields(b.String()) {
			if strings.HasPrefix(f, "release=") {
				return fmt.Sprintf("GET / %d from %s", res.StatusCode, f)
			}
		}
		return fmt.Sprintf("GET / %d: %s", res.StatusCode, lastLine(b.String()))
	}
	want := map[string]int{"web": 2, "worker": 1, "scheduler": 1}
	log.Printf("moorage: first deploy")
	if out, err := deploy("moorage 0", ""); err != nil {
		return fmt.Errorf("first deploy: %w\n%s", err, out)
	}
	if err := settleMoorage(ctx, w, s, want); err != nil {
		return err
	}

	from := time.Now()
	for i := 1; i <= c.upgrades; i++ {
		log.Printf("moorage: deploy %d", i)
		t0 := time.Now()
		if out, err := deploy(fmt.Sprintf("moorage %d", i), ""); err != nil {
			return fmt.Errorf("deploy %d: %w\n%s", i, err, out)
		}
		r.moorage.upgradeTime = append(r.moorage.upgradeTime, time.Since(t0))
		if err := settleMoorage(ctx, w, s, want); err != nil {
			return err
		}
		time.Sleep(time.Second)
		if d, ok := w.switchWindow(s, fmt.Sprintf("v%d", i), fmt.Sprintf("v%d", i+1)); ok {
			r.moorage.switches = append(r.moorage.switches, d)
		}
	}
	r.moorage.upgrades = c.upgrades
	r.moorage.beatPods, r.moorage.overlaps, r.moorage.both, r.moorage.overDetail = w.overlap(s, "scheduler", from, time.Now())

	log.Printf("moorage: c. a deploy whose migration fails")
	t0 := time.Now()
	out, err := deploy("moorage fail", "HELLO_MIGRATE_FAIL: \"1\"")
	r.moorage.failExit = "`moorage deploy` " + exitText(err, out)
	time.Sleep(5 * time.Second)
	r.moorage.failNewPods = len(w.list(s, func(p *podRec) bool { return !s.isTask(p) && p.added.After(t0) }))
	r.moorage.failServing = get()
	var tasks []string
	for _, p := range w.list(s, func(p *podRec) bool { return s.isTask(p) && p.added.After(t0) && p.deleted.IsZero() }) {
		tasks = append(tasks, p.name)
	}
	r.moorage.failLeft = "release task pods left: " + fmt.Sprint(len(tasks))

	log.Printf("moorage: d. migration 003, then web unhealthy")
	if err := addMigration003(app); err != nil {
		return err
	}
	t0 = time.Now()
	out, err = deploy("moorage m3", "HELLO_UNHEALTHY: \"1\"")
	r.moorage.rbExit = "`moorage deploy` " + exitText(err, out)
	r.moorage.rbPods = w.during(s, t0, time.Now(), func(*podRec) bool { return true })
	time.Sleep(5 * time.Second)
	var ran []string
	for _, p := range w.list(s, func(p *podRec) bool { return p.added.After(t0) }) {
		if s.isTask(&p) {
			ran = append(ran, fmt.Sprintf("%s %s (%s)", p.labels["moorage.kind"], p.labels["moorage.service"], p.labels["moorage.release"]))
			continue
		}
		if p.labels["moorage.release"] != "" && strings.Contains(out, "hello "+p.labels["moorage.release"]+":") {
			r.moorage.rbNewPods++ // of the failed release (its output names it: "deploy hello v8: …")
		}
	}
	r.moorage.rbHook = "no rollback step (nothing was switched); pods that ran: " + strings.Join(ran, ", ")
	r.moorage.rbSchema = schemaVersion(filepath.Join(vols, ns, "data", "schema.json"))
	r.moorage.rbServing = get()
	return nil
}

// settleMoorage waits for the current release's pods: at least want of
// each service not gone (the replaced release's web may be kept warm
// beside them), and one scheduler exactly.
func settleMoorage(ctx context.Context, w *watch, s side, want map[string]int) error {
	return poll(ctx, 3*time.Minute, func() error {
		got := map[string]int{}
		for _, p := range w.list(s, func(p *podRec) bool { return p.deleted.IsZero() && !s.isTask(p) }) {
			got[p.labels[s.svcLabel]]++
		}
		for svc, n := range want {
			if got[svc] < n || (svc == s.beat || svc == s.worker) && got[svc] != n {
				return fmt.Errorf("%s has %d pods, want %d", svc, got[svc], n)
			}
		}
		return nil
	})
}
