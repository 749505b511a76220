package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/notify"
	"github.com/moorage/moorage/internal/testutil/smtpd"
)

// Notifications of a real server reach a real HTTP receiver (signed) and a
// real SMTP server (over STARTTLS); a notifier whose receiver is down
// delays nothing and shows in `moorage ps`.
func TestPipelineNotifyDeploy(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := s.hello(t, fastSpec...)

	var mu sync.Mutex
	var bodies [][]byte
	var sigs []string
	got := make(chan struct{}, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, sigs = append(bodies, b), append(sigs, r.Header.Get("X-Moorage-Signature-256"))
		mu.Unlock()
		got <- struct{}{}
	}))
	defer recv.Close()
	mail := smtpd.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/services/T/B/SECRETPATH"
	ln.Close()

	s.mustRun("notify", "add", "-a", "hello", "webhook", recv.URL+"/hook", "--secret", "hook-key")
	s.mustRun("notify", "add", "--server", "slack", dead)
	s.mustRun("notify", "add", "-a", "hello", "email", "--smtp", mail.Addr, "--from", "moorage@example.com", "--to", "ops@example.com",
		"--ca-file", mail.CAFile)

	t0 := time.Now()
	s.deploy(app, 0)
	if d := time.Since(t0); d > 60*time.Second {
		t.Fatalf("deploy took %s", d)
	}
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook delivery within 30s of the deploy")
	}
	mu.Lock()
	body, sig := bodies[0], sigs[0]
	mu.Unlock()
	if sig != notify.Signature("hook-key", body) {
		t.Fatalf("signature %q does not match the body", sig)
	}
	var ev notify.Notification
	if err := json.Unmarshal(body, &ev); err != nil || ev.Event != notify.EventDeploySucceeded || ev.App != "hello" || ev.Release != "v1" {
		t.Fatalf("webhook event %s (%v)", body, err)
	}
	msgs := mail.Wait(1, 30*time.Second)
	if len(msgs) != 1 || !msgs[0].TLS || !strings.Contains(msgs[0].Data, "Subject: [moorage] hello: deploy #") {
		t.Fatalf("mail: %+v", msgs)
	}

	// The dead receiver: failing in ps, without its secret URL path.
	var out string
	waitFor(t, 30*time.Second, "the failing notifier in moorage ps", func() error {
		out = s.mustRun("ps", "-a", "hello")
		if !strings.Contains(out, "notifications:") || !strings.Contains(out, "FAILING") {
			return errString("ps:\n" + out)
		}
		return nil
	})
	if strings.Contains(out, "SECRETPATH") {
		t.Fatalf("ps shows the Slack URL's secret path:\n%s", out)
	}
	if out := s.mustRun("notify", "ls", "-a", "hello"); !strings.Contains(out, "ok ") || !strings.Contains(out, "every app") {
		t.Fatalf("notify ls:\n%s", out)
	}
	// No answer of the API and no log line carries a notifier's secret
	// (the webhook's signing key, the Slack URL's secret path): they are
	// sealed in the store, and the API answers with the target's label.
	for _, args := range [][]string{{"notify", "ls", "-a", "hello", "--json"}, {"notify", "ls", "--all", "--json"}, {"ps", "-a", "hello", "--json"}} {
		if out := s.mustRun(args...); strings.Contains(out, "hook-key") || strings.Contains(out, "SECRETPATH") {
			t.Fatalf("%s shows a notifier's secret:\n%s", strings.Join(args, " "), out)
		}
	}
	if l := s.logs(); strings.Contains(l, "hook-key") || strings.Contains(l, "SECRETPATH") {
		t.Fatalf("the server's log shows a notifier's secret:\n%s", tail(l, 40))
	}
}

type errString string

func (e errString) Error() string { return string(e) }
