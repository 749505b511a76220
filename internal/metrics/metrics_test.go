package metrics

import (
	"bufio"
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

type certList []certs.Info

func (l certList) List() []certs.Info { return l }

func scrape(t *testing.T, c *Collector) string {
	t.Helper()
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	c.Write(context.Background(), w)
	w.Flush()
	return b.String()
}

func wantLine(t *testing.T, out, line string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if l == line {
			return
		}
	}
	t.Errorf("no line %q in:\n%s", line, out)
}

// The figures come from the store's records (a real store), counted once
// each, the new ones at the next scrape.
func TestCollector(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "moorage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.EnsureApp(ctx, "shop", "process"); err != nil {
		t.Fatal(err)
	}
	deploy := func(status string) {
		d := &store.Deploy{App: "shop", Kind: store.KindDeploy, Owner: "test"}
		if err := st.CreateDeploy(ctx, d); err != nil {
			t.Fatal(err)
		}
		seq, err := st.StartStep(ctx, d.ID, "build", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.FinishStep(ctx, d.ID, seq, "done", ""); err != nil {
			t.Fatal(err)
		}
		if err := st.FinishDeploy(ctx, d.ID, status, ""); err != nil {
			t.Fatal(err)
		}
	}
	deploy(store.DeploySucceeded)
	deploy(store.DeployFailed)
	finished := time.Now().Add(-2 * time.Hour)
	if err := st.PutBackup(ctx, &store.Backup{ID: "b1", App: "shop", Kind: "volume", Target: "data", Status: store.BackupOK,
		CreatedAt: finished.Add(-time.Minute), FinishedAt: finished, VerifiedAt: finished.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutBackup(ctx, &store.Backup{ID: "b2", App: "shop", Kind: "volume", Target: "data", Status: store.BackupFailed,
		CreatedAt: time.Now(), FinishedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	expiry := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	c := New(st, certList{{App: "shop", Mode: "auto", Names: []string{"shop.example"}, Status: "valid", NotAfter: expiry}})
	ch := make(chan runtime.InstanceEvent, 2)
	ch <- runtime.InstanceEvent{Type: runtime.EventCrash, App: "shop", Service: "web"}
	ch <- runtime.InstanceEvent{Type: runtime.EventRestart, App: "shop", Service: "web"}
	close(ch)
	c.Watch(ch)
	NotifierFailed("shop", "webhook")

	out := scrape(t, c)
	wantLine(t, out, `moorage_deploys_total{app="shop",kind="deploy",status="succeeded"} 1`)
	wantLine(t, out, `moorage_deploys_total{app="shop",kind="deploy",status="failed"} 1`)
	wantLine(t, out, `moorage_deploy_step_duration_seconds_count{app="shop",step="build"} 2`)
	wantLine(t, out, `moorage_deploy_last_status{app="shop",status="failed"} 1`)
	wantLine(t, out, `moorage_backup_last_success_verified{app="shop",kind="volume",target="data"} 1`)
	wantLine(t, out, `moorage_certificate_expiry_timestamp_seconds{app="shop",name="shop.example",mode="auto",status="valid"} `+
		strconv.FormatFloat(float64(expiry.Unix()), 'g', -1, 64))
	wantLine(t, out, `moorage_instance_crashes_total{app="shop",service="web"} 1`)
	wantLine(t, out, `moorage_instance_restarts_total{app="shop",service="web"} 1`)
	wantLine(t, out, `moorage_notifier_failures_total{app="shop",kind="webhook"} 1`)
	age := sampleValue(t, out, `moorage_backup_last_success_age_seconds{app="shop",kind="volume",target="data"}`)
	if age < 7100 || age > 7300 {
		t.Errorf("backup age %v s, want about 2 h (the failed later one does not count)", age)
	}

	// A scrape counts each deploy once; a new one at the next scrape.
	deploy(store.DeploySucceeded)
	out = scrape(t, c)
	wantLine(t, out, `moorage_deploys_total{app="shop",kind="deploy",status="succeeded"} 2`)
	wantLine(t, out, `moorage_deploys_total{app="shop",kind="deploy",status="failed"} 1`)
	wantLine(t, out, `moorage_deploy_last_status{app="shop",status="succeeded"} 1`)
}

func sampleValue(t *testing.T, out, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in:\n%s", series, out)
	return 0
}

// A deploy still running when scraped is counted once it ends, however
// many finish after it; what is kept per app to count once stays small.
func TestCollectorRunningDeployAndBoundedBookkeeping(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "moorage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.EnsureApp(ctx, "shop", "process"); err != nil {
		t.Fatal(err)
	}
	start := func() int64 {
		d := &store.Deploy{App: "shop", Kind: store.KindDeploy, Owner: "test"}
		if err := st.CreateDeploy(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	finish := func(id int64) {
		if err := st.FinishDeploy(ctx, id, store.DeploySucceeded, ""); err != nil {
			t.Fatal(err)
		}
	}
	c := New(st, nil)
	long := start()
	for i := 0; i < 30; i++ {
		finish(start())
	}
	out := scrape(t, c)
	wantLine(t, out, `moorage_deploys_total{app="shop",kind="deploy",status="succeeded"} 30`)
	for i := 0; i < 10; i++ {
		finish(start())
	}
	finish(long)
	out = scrape(t, c)
	wantLine(t, out, `moorage_deploys_total{app="shop",kind="deploy",status="succeeded"} 41`)
	out = scrape(t, c)
	wantLine(t, out, `moorage_deploys_total{app="shop",kind="deploy",status="succeeded"} 41`)
	if n := len(c.seen["shop"]); n != 0 {
		t.Errorf("%d deploys kept in memory once all have ended, want 0 (the floor covers them)", n)
	}
	if err := st.DeleteApp(ctx, "shop", false); err != nil {
		t.Fatal(err)
	}
	scrape(t, c)
	if _, ok := c.seen["shop"]; ok {
		t.Errorf("the bookkeeping of a removed app is kept")
	}
}
