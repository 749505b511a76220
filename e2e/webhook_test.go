package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/api"
)

// A webhook signed like GitHub's, sent to the server's HTTPS listener:
// the server fetches the commit from a repository served by `git daemon`
// and deploys it through the pipeline; a wrong signature gets 401 and
// deploys nothing; a replayed delivery is ignored.
func TestWebhookGitHubDeploys(t *testing.T) {
	parallel(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is not installed (scripts/test-deps): %v", err)
	}
	s := startServer(t)
	// The HTTPS listener answers names it has a certificate for: the app
	// is first deployed with one (tls: internal), then by the webhook.
	app := s.hello(t, append(fastSpec, "    health: {path: /healthz, interval: 1s}\n", "    health: {path: /healthz, interval: 1s}\n    http: {hosts: [hello.localhost], tls: internal}\n")...)
	s.deploy(app, 0)
	setMessage(t, app, "from the webhook")
	mustGit(t, app, nil, "init", "--quiet", "--initial-branch=main")
	mustGit(t, app, nil, "add", "-A")
	mustGit(t, app, nil, "commit", "--quiet", "-m", "webhook commit")
	sha := strings.TrimSpace(mustGit(t, app, nil, "rev-parse", "HEAD"))

	// git daemon serving the work tree's repository.
	daemonAddr := freePort(t)
	host, port, _ := net.SplitHostPort(daemonAddr)
	base := strings.TrimSuffix(app, "/hello")
	startDaemon := func() {
		daemon := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--base-path="+base, "--listen="+host, "--port="+port, base)
		var dlog bytes.Buffer
		daemon.Stdout, daemon.Stderr = &dlog, &dlog
		daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // it forks a child per connection
		daemon.WaitDelay = 5 * time.Second
		if err := daemon.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-daemon.Process.Pid, syscall.SIGKILL); daemon.Wait() })
		waitFor(t, 30*time.Second, "git daemon", func() error {
			c, err := net.DialTimeout("tcp", daemonAddr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	}

	var h struct{ Secret string }
	if err := json.Unmarshal([]byte(s.mustRun("webhook", "set", "-a", "hello", "--repo", "git://"+daemonAddr+"/hello", "--branch", "main", "--json")), &h); err != nil || len(h.Secret) < 32 {
		t.Fatalf("webhook set: %+v %v", h, err)
	}

	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "hello.localhost"}}}
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"full_name":"acme/hello"}}`, sha))
	send := func(secret, delivery string) (int, string) {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req, _ := http.NewRequest(http.MethodPost, "https://"+s.https+"/hooks/hello", bytes.NewReader(body))
		req.Host = "hello.localhost"
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		if d := time.Since(t0); d > 5*time.Second {
			t.Fatalf("the webhook was answered after %s, not at once", d)
		}
		return resp.StatusCode, b.String()
	}

	if code, out := send("wrong-secret", "d-0"); code != http.StatusUnauthorized {
		t.Fatalf("wrong signature: %d %s", code, out)
	}
	big := bytes.Repeat([]byte(" "), 6<<20)
	bigReq, _ := http.NewRequest(http.MethodPost, "https://"+s.https+"/hooks/hello", bytes.NewReader(big))
	bigReq.Host = "hello.localhost"
	bigReq.Header.Set("X-Hub-Signature-256", "sha256=00")
	if resp, err := hc.Do(bigReq); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 6 MiB body: %v %v, want 413", resp, err)
	} else {
		resp.Body.Close()
	}

	// The repository is not served yet: the delivery is taken, its fetch
	// fails, and that is a failed pipeline in `moorage deploys`; the
	// provider's redelivery (the same id) runs it once the repository is
	// back.
	if code, out := send(h.Secret, "d-1"); code != http.StatusAccepted {
		t.Fatalf("signed delivery: %d %s", code, out)
	}
	waitFor(t, 60*time.Second, "the failed fetch to be recorded", func() error {
		var ds []struct {
			Kind   string `json:"kind"`
			Status string `json:"status"`
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds); err != nil {
			return err
		}
		for _, d := range ds {
			if d.Kind == "pipeline" && d.Status == "failed" && strings.Contains(d.Reason, "fetch") {
				return nil
			}
		}
		return fmt.Errorf("deploys: %+v", ds)
	})
	startDaemon()
	if code, out := send(h.Secret, "d-1"); code != http.StatusAccepted {
		t.Fatalf("the redelivery of a delivery whose fetch failed: %d %s", code, out)
	}
	waitFor(t, 60*time.Second, "the webhook's commit to serve", func() error {
		if b := helloHTTPS(s); !strings.Contains(b, "from the webhook") {
			return fmt.Errorf("body %q", b)
		}
		return nil
	})
	if code, out := send(h.Secret, "d-1"); code != http.StatusOK || !strings.Contains(out, "ignored") {
		t.Fatalf("replayed delivery: %d %s", code, out)
	}
	var ds []struct {
		Kind   string `json:"kind"`
		Status string `json:"status"`
	}
	waitFor(t, 30*time.Second, "the pipeline record to end", func() error {
		if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds); err != nil {
			return err
		}
		for _, d := range ds {
			if d.Kind == "pipeline" && d.Status == "running" {
				return fmt.Errorf("still running")
			}
		}
		return nil
	})
	var got []string
	for _, d := range ds {
		if d.Kind == "pipeline" {
			got = append(got, d.Status)
		}
	}
	if strings.Join(got, ",") != "succeeded,failed" {
		t.Fatalf("pipelines %v, newest first; want the redelivery succeeded after the failed fetch (the 401, the 413 and the replay run none): %+v", got, ds)
	}
	if st := s.ps("hello"); st.Active != "v2" {
		t.Fatalf("active %s, want v2", st.Active)
	}
	if c := s.releaseCommits("hello")["v2"].Commit; c == nil || c.SHA != sha || c.Branch != "main" || c.Message != "webhook commit" {
		t.Fatalf("v2 records commit %+v, want %s on main", c, sha)
	}
}

// helloHTTPS is the body of GET / on the server's HTTPS listener as
// hello.localhost (the error's text when it fails).
func helloHTTPS(s *server) string {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "hello.localhost"}}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+s.https+"/", nil)
	req.Host = "hello.localhost"
	resp, err := hc.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return b.String()
}

// signedPush sends a GitHub-signed push event of sha on main to the
// server's /hooks/hello, as hello.localhost; it returns the status.
func signedPush(t *testing.T, s *server, secret, delivery, sha string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "hello.localhost"}}}
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q}`, sha))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, "https://"+s.https+"/hooks/hello", bytes.NewReader(body))
	req.Host = "hello.localhost"
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// A private repository over ssh: `webhook set` makes a deploy key, the
// repository (a real sshd and git) lets only that key in, and a signed
// push deploys the commit fetched with it. The host key the first fetch
// met is pinned: a server answering with another key is refused, and that
// is a failed pipeline.
func TestWebhookSSHDeployKey(t *testing.T) {
	parallel(t)
	d := startSSHD(t)
	s := startServer(t)
	app := s.hello(t, append(fastSpec, "    health: {path: /healthz, interval: 1s}\n", "    health: {path: /healthz, interval: 1s}\n    http: {hosts: [hello.localhost], tls: internal}\n")...)
	s.deploy(app, 0)
	setMessage(t, app, "over ssh")
	mustGit(t, app, nil, "init", "--quiet", "--initial-branch=main")
	mustGit(t, app, nil, "add", "-A")
	mustGit(t, app, nil, "commit", "--quiet", "-m", "ssh commit")
	sha := strings.TrimSpace(mustGit(t, app, nil, "rev-parse", "HEAD"))
	bare := filepath.Join(d.dir, "hello.git")
	mustGit(t, d.dir, nil, "clone", "--quiet", "--bare", app, bare)

	repo := "ssh://" + d.user + "@127.0.0.1:" + d.port() + bare
	var h, again api.Webhook
	if err := json.Unmarshal([]byte(s.mustRun("webhook", "set", "-a", "hello", "--repo", repo, "--json")), &h); err != nil || !strings.HasPrefix(h.DeployKey, "ssh-ed25519 ") {
		t.Fatalf("webhook set over ssh: %+v %v", h, err)
	}
	if show := s.mustRun("webhook", "show", "-a", "hello"); !strings.Contains(show, h.DeployKey) {
		t.Fatalf("webhook show lacks the deploy key:\n%s", show)
	}
	// The repository host takes the deploy key (and the test's own key).
	own, _ := os.ReadFile(d.path("id.pub"))
	d.write("authorized_keys", string(own)+h.DeployKey+"\n")

	if code, out := signedPush(t, s, h.Secret, "ssh-1", sha); code != http.StatusAccepted {
		t.Fatalf("signed delivery: %d %s", code, out)
	}
	waitFor(t, 90*time.Second, "the commit fetched over ssh to serve", func() error {
		if b := helloHTTPS(s); !strings.Contains(b, "over ssh") {
			return fmt.Errorf("body %q", b)
		}
		return nil
	})
	if c := s.releaseCommits("hello")["v2"].Commit; c == nil || c.SHA != sha {
		t.Fatalf("v2 records commit %+v, want %s", c, sha)
	}
	waitFor(t, 60*time.Second, "the pipeline to end", func() error {
		var ds []api.Deploy
		if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds); err != nil {
			return err
		}
		for _, x := range ds {
			if x.Kind == "pipeline" && x.Status == "running" {
				return fmt.Errorf("still running")
			}
		}
		return nil
	})
	// `webhook set` again keeps the key: the repository still lets it in.
	if err := json.Unmarshal([]byte(s.mustRun("webhook", "set", "-a", "hello", "--repo", repo, "--json")), &again); err != nil || again.DeployKey != h.DeployKey {
		t.Fatalf("webhook set again changed the deploy key: %+v %v", again, err)
	}
	h.Secret = again.Secret

	// The host's key changes (another server at that address): refused.
	d.stop()
	cfg, _ := os.ReadFile(d.path("sshd_config"))
	d.write("sshd_config", strings.Replace(string(cfg), "HostKey "+d.path("host_key"), "HostKey "+d.path("other_host_key"), 1))
	if err := d.start(requireSSH(t)); err != nil {
		t.Fatal(err)
	}
	setMessage(t, app, "not fetched")
	mustGit(t, app, nil, "commit", "--quiet", "-am", "second")
	mustGit(t, app, nil, "push", "--quiet", bare, "main")
	sha2 := strings.TrimSpace(mustGit(t, app, nil, "rev-parse", "HEAD"))
	if code, out := signedPush(t, s, h.Secret, "ssh-2", sha2); code != http.StatusAccepted {
		t.Fatalf("signed delivery: %d %s", code, out)
	}
	waitFor(t, 60*time.Second, "the changed host key to fail the fetch", func() error {
		var ds []api.Deploy
		if err := json.Unmarshal([]byte(s.mustRun("deploys", "-a", "hello", "--json")), &ds); err != nil {
			return err
		}
		for _, x := range ds {
			if x.Kind == "pipeline" && x.Status == "failed" && strings.Contains(x.Reason, "fetch") {
				if !strings.Contains(x.Reason, "Host key verification failed") && !strings.Contains(x.Reason, "HOST IDENTIFICATION HAS CHANGED") {
					return fmt.Errorf("failed for another reason: %s", x.Reason)
				}
				return nil
			}
		}
		return fmt.Errorf("deploys: %+v", ds)
	})
	if st := s.ps("hello"); st.Active != "v2" {
		t.Fatalf("active %s, want v2", st.Active)
	}
}
