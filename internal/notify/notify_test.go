package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/secrets"
	"github.com/moorage/moorage/internal/store"
	"github.com/moorage/moorage/internal/testutil/smtpd"
)

// receiver is a real HTTP server that records what it is sent.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
	got  chan struct{}
}

type received struct {
	hdr  http.Header
	body []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{req.Header.Clone(), b})
		r.mu.Unlock()
		r.got <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) wait(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		if len(r.reqs) >= n {
			out := append([]received(nil), r.reqs...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.got:
		case <-deadline:
			r.mu.Lock()
			got := len(r.reqs)
			r.mu.Unlock()
			t.Fatalf("the receiver got %d requests, want %d", got, n)
		}
	}
}

func newNotifier(t *testing.T) (*Notifier, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secrets.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Store: st, Sealer: box, Interval: 50 * time.Millisecond, Backoff: 20 * time.Millisecond, Attempts: 3}), st
}

func TestPipelineNotifyWebhookSignedAndSlack(t *testing.T) {
	n, st := newNotifier(t)
	ctx := context.Background()
	hook, slack, other := newReceiver(t), newReceiver(t), newReceiver(t)
	if _, err := n.Add(ctx, "shop", Target{Kind: KindWebhook, URL: hook.URL + "/moorage", Secret: "k3y"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Add(ctx, "", Target{Kind: KindSlack, URL: slack.URL + "/services/T000/B000/XXXX"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Add(ctx, "blog", Target{Kind: KindWebhook, URL: other.URL, Secret: "x"}); err != nil {
		t.Fatal(err)
	}
	recs, _ := st.ListNotifiers(ctx, "*")
	for _, r := range recs {
		if strings.Contains(r.Label, "XXXX") || strings.Contains(string(r.Target), "k3y") {
			t.Fatalf("a secret is stored in the clear: %+v", r)
		}
	}

	n.Emit(ctx, Notification{ID: "deploy-7", Event: EventDeployFailed, App: "shop", Title: "shop: deploy #7 failed", Detail: "release task 1 exited 1"})
	got := hook.wait(t, 1)[0]
	// Checked as a receiver would, not with Signature itself.
	mac := hmac.New(sha256.New, []byte("k3y"))
	mac.Write(got.body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); got.hdr.Get("X-Moorage-Signature-256") != want {
		t.Fatalf("signature %q, want %q", got.hdr.Get("X-Moorage-Signature-256"), want)
	}
	var ev Notification
	if err := json.Unmarshal(got.body, &ev); err != nil || ev.Event != EventDeployFailed || ev.App != "shop" || ev.Detail != "release task 1 exited 1" || got.hdr.Get("X-Moorage-Delivery") != "deploy-7" {
		t.Fatalf("webhook body %s (%v), headers %v", got.body, err, got.hdr)
	}
	var msg struct{ Text string }
	if err := json.Unmarshal(slack.wait(t, 1)[0].body, &msg); err != nil || !strings.Contains(msg.Text, "*shop: deploy #7 failed*") || !strings.Contains(msg.Text, ":x:") {
		t.Fatalf("slack body: %+v %v", msg, err)
	}
	n.wg.Wait()
	if len(other.reqs) != 0 {
		t.Fatal("another app's notifier was sent shop's event")
	}
}

func TestPipelineNotifyEmailSTARTTLS(t *testing.T) {
	n, _ := newNotifier(t)
	ctx := context.Background()
	mail := smtpd.Start(t)
	tgt := Target{Kind: KindEmail, SMTP: mail.Addr, From: "moorage <moorage@example.com>", To: []string{"ops@example.com"},
		Username: mail.User, Password: mail.Pass, CAFile: mail.CAFile}
	if _, err := n.Add(ctx, "shop", tgt); err != nil {
		t.Fatal(err)
	}
	n.Emit(ctx, Notification{ID: "backup-1", Event: EventBackupFailed, App: "shop", Title: "shop: scheduled backup of volume data failed", Detail: "disk full"})
	msgs := mail.Wait(1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d mails arrived", len(msgs))
	}
	m := msgs[0]
	if !m.TLS || m.User != mail.User || m.From != "moorage@example.com" || len(m.To) != 1 || m.To[0] != "ops@example.com" ||
		!strings.Contains(m.Data, "Subject: [moorage] shop: scheduled backup of volume data failed") || !strings.Contains(m.Data, "disk full") {
		t.Fatalf("mail: %+v", m)
	}

	// Without the CA the certificate is not trusted: no mail in the clear,
	// an error recorded.
	tgt.CAFile = ""
	if err := Send(ctx, &tgt, Notification{Title: "x"}); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("untrusted STARTTLS: %v", err)
	}
}

// A receiver that is down delays nothing: Emit returns at once, the
// retries happen in the background, and the failure is recorded on the
// notifier (what `moorage ps` shows).
func TestPipelineNotifyReceiverDown(t *testing.T) {
	n, st := newNotifier(t)
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/hook"
	ln.Close()
	rec, err := n.Add(ctx, "shop", Target{Kind: KindWebhook, URL: dead, Secret: "k"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	n.Emit(ctx, Notification{ID: "deploy-1", Event: EventDeploySucceeded, App: "shop", Title: "ok"})
	if d := time.Since(t0); d > 200*time.Millisecond {
		t.Fatalf("Emit took %s with the receiver down", d)
	}
	n.wg.Wait()
	got, err := st.GetNotifier(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Failing() || got.Failures != 3 || !strings.Contains(got.LastError, "deploy.succeeded") || !strings.Contains(got.LastError, "connection refused") {
		t.Fatalf("notifier after 3 failed attempts: %+v", got)
	}
}

// The notifier watches the store: a deploy that ends is delivered once,
// also across a restart of the notifier; history from before the first
// start is not replayed.
func TestPipelineNotifyWatchesDeploys(t *testing.T) {
	n, st := newNotifier(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hook := newReceiver(t)
	if _, err := n.Add(ctx, "", Target{Kind: KindWebhook, URL: hook.URL, Secret: "k"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnsureApp(ctx, "shop", "process"); err != nil {
		t.Fatal(err)
	}
	finish := func(status string) int64 {
		d := &store.Deploy{App: "shop", Kind: store.KindDeploy, Owner: "alice"}
		if err := st.CreateDeploy(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		if err := st.FinishDeploy(context.Background(), d.ID, status, "why"); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	finish(store.DeploySucceeded) // before the first start: not news

	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	waitCursor(t, st)
	id := finish(store.DeployRolledBack)
	got := hook.wait(t, 1)
	var ev Notification
	json.Unmarshal(got[0].body, &ev)
	if ev.Event != EventDeployRolledBack || ev.Deploy != id {
		t.Fatalf("event %+v, want the rollback of deploy %d", ev, id)
	}
	cancel()
	<-done

	// Restarted: what ended meanwhile is delivered, nothing twice.
	id2 := finish(store.DeploySucceeded)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	n2 := New(n.o)
	go n2.Run(ctx2)
	got = hook.wait(t, 2)
	json.Unmarshal(got[1].body, &ev)
	if ev.Event != EventDeploySucceeded || ev.Deploy != id2 {
		t.Fatalf("after restart: %+v, want deploy %d", ev, id2)
	}
	// Nothing twice: the deploy that ends next is the very next delivery
	// (the notifier goes through the records in order, so a repeat of an
	// earlier one would come before it).
	id3 := finish(store.DeployFailed)
	got = hook.wait(t, 3)
	json.Unmarshal(got[2].body, &ev)
	if ev.Event != EventDeployFailed || ev.Deploy != id3 {
		t.Fatalf("third delivery %+v, want the failure of deploy %d (nothing delivered twice)", ev, id3)
	}
}

func waitCursor(t *testing.T, st *store.Store) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok, _ := st.NotifyCursor(context.Background(), cursorDeploys); ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the notifier did not start")
}

func TestTargetValidate(t *testing.T) {
	for _, tc := range []struct {
		t    Target
		want string
	}{
		{Target{Kind: "pager"}, "use webhook, slack or email"},
		{Target{Kind: KindWebhook, URL: "ftp://x"}, "http:// or https://"},
		{Target{Kind: KindWebhook, URL: "https://x/h"}, "needs --secret"},
		{Target{Kind: KindEmail, From: "a@b.c", To: []string{"d@e.f"}}, "needs --smtp"},
		{Target{Kind: KindEmail, SMTP: "mx", From: "nope", To: []string{"d@e.f"}}, "--from"},
		{Target{Kind: KindEmail, SMTP: "mx", From: "a@b.c"}, "needs --to"},
	} {
		err := tc.t.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.t, err, tc.want)
		}
	}
	e := Target{Kind: KindEmail, SMTP: "mx.example.com", From: "a@b.c", To: []string{"d@e.f"}}
	if err := e.Validate(); err != nil || e.SMTP != "mx.example.com:587" {
		t.Fatalf("%v %s", err, e.SMTP)
	}
	s := Target{Kind: KindSlack, URL: "https://hooks.slack.com/services/T/B/SECRET"}
	if l := s.Label(); strings.Contains(l, "SECRET") {
		t.Fatalf("label shows the secret path: %s", l)
	}
}

// A pipeline's outcome is told once: by its deploy's own record when it got
// that far, by the pipeline's record when it failed before deploying.
func TestDeployEventOfPipelines(t *testing.T) {
	cases := []struct {
		d    store.FinishedDeploy
		want string // "" for no notification
	}{
		{store.FinishedDeploy{Kind: store.KindPipeline, Status: store.DeploySucceeded}, ""},
		{store.FinishedDeploy{Kind: store.KindPipeline, Status: store.DeployFailed, Reason: "deploy #7 failed: health check", Child: 7}, ""},
		// What the reason says is not what decides: a pipeline with no
		// deploy of its own is news.
		{store.FinishedDeploy{Kind: store.KindPipeline, Status: store.DeployFailed, Reason: "deploy #7 could not start"}, EventDeployFailed},
		{store.FinishedDeploy{Kind: store.KindPipeline, Status: store.DeployFailed, Reason: "test failed: `pytest` exited with status 1"}, EventDeployFailed},
		{store.FinishedDeploy{Kind: store.KindPipeline, Status: store.DeployFailed, Reason: "fetch: git fetch: repository not found"}, EventDeployFailed},
		{store.FinishedDeploy{Kind: store.KindDeploy, Status: store.DeployFailed, Reason: "health check"}, EventDeployFailed},
		{store.FinishedDeploy{Kind: store.KindDeploy, Status: store.DeploySucceeded}, EventDeploySucceeded},
	}
	for _, c := range cases {
		ev, ok := deployNotification(c.d)
		got := ""
		if ok {
			got = ev.Event
		}
		if got != c.want {
			t.Errorf("%s %s %q: notified %q, want %q", c.d.Kind, c.d.Status, c.d.Reason, got, c.want)
		}
	}
}
