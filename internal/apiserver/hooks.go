package apiserver

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/notify"
	"github.com/moorage/moorage/internal/pipeline"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// Journal keys of an app's webhook.
const (
	journalWebhook    = "webhook"            // JSON webhookConfig, the secret sealed
	journalDeliveries = "webhook-deliveries" // JSON list of the last delivery ids
	maxDeliveries     = 200
	maxHookBody       = 5 << 20
)

type webhookConfig struct {
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
	Secret string `json:"secret"` // base64 of the sealed secret
	// The deploy key of an ssh repository: the private key sealed (base64),
	// and its public half as an authorized_keys line.
	DeployKey    string `json:"deploy_key,omitempty"`
	DeployKeyPub string `json:"deploy_key_pub,omitempty"`
	// KnownHosts pins the repository host's key, recorded at the first
	// fetch (ssh's accept-new): a changed key is refused.
	KnownHosts string `json:"known_hosts,omitempty"`
}

func (s *Server) hookRoutes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /v1/apps/{app}/webhook", s.setWebhook)
	mux.HandleFunc("GET /v1/apps/{app}/webhook", s.getWebhook)
}

// setWebhook configures app's webhook and answers its new secret.
func (s *Server) setWebhook(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	var req api.Webhook
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "webhook request: "+err.Error())
		return
	}
	if err := spec.CheckName(app); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "app "+err.Error())
		return
	}
	useSSH, err := checkRepoURL(req.Repo)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if req.Branch == "" {
		req.Branch = "main"
	}
	webhookMu.Lock()
	defer webhookMu.Unlock()
	cfg := webhookConfig{Repo: req.Repo, Branch: req.Branch}
	if old, err := s.webhook(r.Context(), app); err == nil && useSSH && !req.NewDeployKey {
		// The deploy key stays (the repository has it); the host key stays
		// pinned while the host is the same.
		cfg.DeployKey, cfg.DeployKeyPub = old.DeployKey, old.DeployKeyPub
		if repoHost(old.Repo) == repoHost(req.Repo) {
			cfg.KnownHosts = old.KnownHosts
		}
	}
	if useSSH && cfg.DeployKey == "" {
		priv, pub, err := newDeployKey(app)
		if err != nil {
			writeErr(w, err)
			return
		}
		sealed, err := s.Engine.SealValue(app, "webhook-deploy-key", priv)
		if err != nil {
			writeErr(w, err)
			return
		}
		cfg.DeployKey, cfg.DeployKeyPub = base64.StdEncoding.EncodeToString(sealed), pub
	}
	secret := make([]byte, 24)
	rand.Read(secret)
	req.Secret = hex.EncodeToString(secret)
	sealed, err := s.Engine.SealValue(app, "webhook", []byte(req.Secret))
	if err != nil {
		writeErr(w, err)
		return
	}
	cfg.Secret = base64.StdEncoding.EncodeToString(sealed)
	if _, err := s.Engine.Store().EnsureApp(r.Context(), app, "process"); err != nil {
		writeErr(w, err)
		return
	}
	if err := s.putWebhook(r.Context(), app, &cfg); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Webhook{App: app, Repo: cfg.Repo, Branch: cfg.Branch, Secret: req.Secret, DeployKey: cfg.DeployKeyPub})
}

// webhookMu serializes changes of webhook configs.
var webhookMu sync.Mutex

// pinHostKey records knownHosts as the host key of the repository that
// fetched is the config of, unless the webhook was set anew meanwhile
// (another repository or key: its own first fetch pins its host).
func (s *Server) pinHostKey(ctx context.Context, app string, fetched *webhookConfig, knownHosts string) error {
	webhookMu.Lock()
	defer webhookMu.Unlock()
	cur, err := s.webhook(ctx, app)
	if err != nil {
		return err
	}
	if cur.DeployKey != fetched.DeployKey || repoHost(cur.Repo) != repoHost(fetched.Repo) || cur.KnownHosts != fetched.KnownHosts {
		return nil
	}
	cur.KnownHosts = knownHosts
	return s.putWebhook(ctx, app, cur)
}

func (s *Server) putWebhook(ctx context.Context, app string, cfg *webhookConfig) error {
	b, _ := json.Marshal(cfg)
	return s.Engine.Store().PutJournal(ctx, app, journalWebhook, string(b))
}

// checkRepoURL checks a webhook's repository URL and says whether it is
// fetched over ssh (with the app's deploy key).
func checkRepoURL(repo string) (useSSH bool, err error) {
	if scpLike.MatchString(repo) {
		return true, nil // git@github.com:acme/shop.git
	}
	u, err := url.Parse(repo)
	if err != nil || u.Host == "" {
		// Not echoed: a URL that does not parse may still hold a token.
		return false, fmt.Errorf("--repo is not a clone URL: use https://HOST/PATH, ssh://USER@HOST/PATH, USER@HOST:PATH or git://HOST/PATH")
	}
	switch u.Scheme {
	case "https", "http", "git":
		if u.User != nil {
			// It would be stored, shown and logged as given: a token in it
			// would leak.
			return false, fmt.Errorf("--repo %s holds credentials: give the URL without them; for a private repository use its ssh URL (the server makes a deploy key for it)", u.Redacted())
		}
		return false, nil
	case "ssh":
		if _, ok := u.User.Password(); ok {
			return false, fmt.Errorf("--repo %s holds a password: give ssh://USER@HOST/PATH; the server fetches with its deploy key", u.Redacted())
		}
		return true, nil
	}
	return false, fmt.Errorf("--repo %q: use the repository's clone URL: https://HOST/PATH, ssh://USER@HOST/PATH, USER@HOST:PATH or git://HOST/PATH", u.Redacted())
}

// scpLike is git's scp-like ssh syntax: [user@]host:path, where the path
// does not start with "//" (that is a URL's scheme).
var scpLike = regexp.MustCompile(`^([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:[^/][^\s]*$|^([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:/[^/\s][^\s]*$`)

// repoHost is the host (and port) a repository URL names.
func repoHost(repo string) string {
	if scpLike.MatchString(repo) {
		h, _, _ := strings.Cut(repo, ":")
		if i := strings.LastIndex(h, "@"); i >= 0 {
			h = h[i+1:]
		}
		return h
	}
	if u, err := url.Parse(repo); err == nil {
		return u.Host
	}
	return repo
}

// deployKeySSH writes the app's deploy key and the pinned host key into
// dir and returns the ssh command git fetches with, and the known_hosts
// file it keeps (ssh adds a first host's key to it: accept-new).
func (s *Server) deployKeySSH(app string, cfg *webhookConfig, dir string) (sshCmd, knownHosts string, err error) {
	sealed, err := base64.StdEncoding.DecodeString(cfg.DeployKey)
	if err != nil {
		return "", "", fmt.Errorf("the deploy key of %s is damaged: %w; `moorage webhook set --new-deploy-key` makes a new one", app, err)
	}
	key, err := s.Engine.OpenValue(app, "webhook-deploy-key", sealed)
	if err != nil {
		return "", "", fmt.Errorf("open the deploy key of %s: %w", app, err)
	}
	keyFile, knownHosts := filepath.Join(dir, "deploy_key"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(knownHosts, []byte(cfg.KnownHosts), 0o600); err != nil {
		return "", "", err
	}
	// Only this key, no agent, no user config, no prompt; the host's key
	// must be the pinned one once there is one.
	sshCmd = "ssh -F /dev/null -i " + shellQuote(keyFile) + " -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes" +
		" -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=" + shellQuote(knownHosts)
	return sshCmd, knownHosts, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// newDeployKey makes an ed25519 key pair: the private key in OpenSSH's
// format, the public one as an authorized_keys line naming the app.
func newDeployKey(app string) (priv []byte, pub string, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	block, err := ssh.MarshalPrivateKey(sk, "moorage deploy key of "+app)
	if err != nil {
		return nil, "", err
	}
	sshPub, err := ssh.NewPublicKey(pk)
	if err != nil {
		return nil, "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " moorage-" + app
	return pem.EncodeToMemory(block), line, nil
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	cfg, err := s.webhook(r.Context(), app)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Webhook{App: app, Repo: cfg.Repo, Branch: cfg.Branch, DeployKey: cfg.DeployKeyPub})
}

func (s *Server) webhook(ctx context.Context, app string) (*webhookConfig, error) {
	v, err := s.Engine.Store().GetJournal(ctx, app, journalWebhook)
	if err != nil {
		return nil, err
	}
	if v == "" {
		return nil, fmt.Errorf("%s has no webhook: set one with `moorage webhook set -a %s --repo URL`: %w", app, app, store.ErrNotFound)
	}
	var cfg webhookConfig
	if err := json.Unmarshal([]byte(v), &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// HooksHandler serves POST /hooks/APP (signed webhooks from GitHub, GitLab
// and Gitea) in front of next, on the server's HTTPS listener. Only a POST
// that carries one of their signature headers, to an app with a webhook,
// is taken: any other request goes to next (the app's own /hooks/ routes).
func (s *Server) HooksHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app, ok := IsHook(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		cfg, err := s.webhook(r.Context(), app)
		if errors.Is(err, store.ErrNotFound) {
			next.ServeHTTP(w, r)
			return
		}
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		s.hook(w, r, app, cfg)
	})
}

// IsHook reports whether r is one HooksHandler may take (a signed POST
// /hooks/APP), and for which app.
func IsHook(r *http.Request) (app string, ok bool) {
	app, ok = strings.CutPrefix(r.URL.Path, "/hooks/")
	signed := r.Header.Get("X-Hub-Signature-256") != "" || r.Header.Get("X-Gitlab-Token") != "" || r.Header.Get("X-Gitea-Signature") != ""
	if !ok || r.Method != http.MethodPost || !signed || spec.CheckName(app) != nil {
		return "", false
	}
	return app, true
}

var deliveriesMu sync.Mutex

func (s *Server) hook(w http.ResponseWriter, r *http.Request, app string, cfg *webhookConfig) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHookBody+1))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if len(body) > maxHookBody {
		// Not a signature problem: say what is.
		http.Error(w, fmt.Sprintf("the body is over %d MiB: a push event is far smaller", maxHookBody>>20), http.StatusRequestEntityTooLarge)
		return
	}
	sealed, err := base64.StdEncoding.DecodeString(cfg.Secret)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	secret, err := s.Engine.OpenValue(app, "webhook", sealed)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if !validSignature(r, body, secret) {
		s.log().Warn("webhook: wrong or missing signature", "app", app, "remote", r.RemoteAddr)
		http.Error(w, "wrong or missing signature", http.StatusUnauthorized)
		return
	}
	var push struct {
		Ref         string `json:"ref"`
		After       string `json:"after"`
		CheckoutSHA string `json:"checkout_sha"`
	}
	if err := json.Unmarshal(body, &push); err != nil {
		http.Error(w, "the body is not a push event's JSON", http.StatusBadRequest)
		return
	}
	id := r.Header.Get("X-GitHub-Delivery") + r.Header.Get("X-Gitea-Delivery") + r.Header.Get("X-Gitlab-Event-UUID")
	if id == "" {
		sum := sha256.Sum256(body)
		id = hex.EncodeToString(sum[:])
	}
	// The delivery id is not signed: a captured body sent again under a new
	// id is caught by the body's own hash.
	sum := sha256.Sum256(body)
	ids := []string{id, "body:" + hex.EncodeToString(sum[:])}
	if !s.newDelivery(r.Context(), app, ids...) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "reason": "delivery " + id + " was already received"})
		return
	}
	if push.Ref != "refs/heads/"+cfg.Branch {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "reason": fmt.Sprintf("%s is not the deploy branch (%s)", push.Ref, cfg.Branch)})
		return
	}
	sha := push.After
	if push.CheckoutSHA != "" {
		sha = push.CheckoutSHA
	}
	if strings.Trim(sha, "0") == "" {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "reason": "no commit to deploy (a deleted branch?)"})
		return
	}
	if !commitSHA.MatchString(sha) {
		http.Error(w, "the push event's commit is not a full hexadecimal commit id", http.StatusBadRequest)
		return
	}
	s.log().Info("webhook: deploying", "app", app, "delivery", id, "sha", sha)
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "delivery": id, "commit": sha})
	go s.hookPipeline(app, cfg, sha, id, ids)
}

// commitSHA is a full commit id (SHA-1 or SHA-256): anything else never
// reaches git's command line.
var commitSHA = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// validSignature checks GitHub's and Gitea's HMAC-SHA256 of the body, or
// GitLab's token.
func validSignature(r *http.Request, body, secret []byte) bool {
	want := notify.Signature(string(secret), body) // GitHub's form, as moorage's own webhooks sign
	if h := r.Header.Get("X-Hub-Signature-256"); h != "" {
		return hmac.Equal([]byte(h), []byte(want))
	}
	if h := r.Header.Get("X-Gitea-Signature"); h != "" {
		return hmac.Equal([]byte(h), []byte(strings.TrimPrefix(want, "sha256=")))
	}
	if h := r.Header.Get("X-Gitlab-Token"); h != "" {
		return hmac.Equal([]byte(h), secret)
	}
	return false
}

// newDelivery records a delivery's ids; false when any was seen before
// (then none is recorded).
func (s *Server) newDelivery(ctx context.Context, app string, ids ...string) bool {
	fresh := true
	s.deliveries(ctx, app, func(seen []string) []string {
		for _, id := range ids {
			if slices.Contains(seen, id) {
				fresh = false
				return seen
			}
		}
		return append(seen, ids...)
	})
	return fresh
}

// forgetDelivery unrecords a delivery that could not be run (its commit
// could not be fetched): the provider's "redeliver" runs it then.
func (s *Server) forgetDelivery(ctx context.Context, app string, ids []string) {
	s.deliveries(ctx, app, func(seen []string) []string {
		return slices.DeleteFunc(seen, func(id string) bool { return slices.Contains(ids, id) })
	})
}

// deliveries updates the app's list of delivery ids it has received.
func (s *Server) deliveries(ctx context.Context, app string, update func([]string) []string) {
	deliveriesMu.Lock()
	defer deliveriesMu.Unlock()
	var seen []string
	if v, err := s.Engine.Store().GetJournal(ctx, app, journalDeliveries); err == nil && v != "" {
		json.Unmarshal([]byte(v), &seen)
	}
	seen = update(seen)
	if len(seen) > maxDeliveries {
		seen = seen[len(seen)-maxDeliveries:]
	}
	b, _ := json.Marshal(seen)
	s.Engine.Store().PutJournal(ctx, app, journalDeliveries, string(b))
}

// hookPipeline fetches sha from the app's repository and runs the
// pipeline on it; the outcome is in `moorage deploys` and the
// notifications.
func (s *Server) hookPipeline(app string, cfg *webhookConfig, sha, delivery string, ids []string) {
	ctx := context.Background()
	log := s.log().With("app", app, "delivery", delivery)
	req := pipeline.Request{App: app, Owner: "webhook " + delivery, Plan: dryRunPlan,
		Commit: pipeline.Commit{SHA: sha, Branch: cfg.Branch}}
	// failed records a delivery that could not reach the pipeline's tree as
	// a failed pipeline (in `moorage deploys`, notified), and forgets it so
	// that a redelivery runs it.
	failed := func(err error) {
		log.Error("webhook: fetch failed", "repo", cfg.Repo, "err", err)
		s.forgetDelivery(ctx, app, ids)
		reason := fmt.Sprintf("fetch: %v; nothing was deployed: fix it, then push again or redeliver the webhook", err)
		if err := s.pipelines().Failed(ctx, req, "fetch", err.Error(), reason); err != nil {
			log.Error("webhook: recording the failed fetch", "err", err)
		}
	}
	if err := os.MkdirAll(s.UploadDir, 0o700); err != nil {
		failed(err)
		return
	}
	work, err := os.MkdirTemp(s.UploadDir, "hook-")
	if err != nil {
		failed(err)
		return
	}
	defer os.RemoveAll(work)
	repo, tree := filepath.Join(work, "repo"), filepath.Join(work, "tree")
	env := append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1")
	pin := func() {}
	if cfg.DeployKey != "" {
		sshCmd, kh, err := s.deployKeySSH(app, cfg, work)
		if err != nil {
			failed(err)
			return
		}
		env = append(env, "GIT_SSH_COMMAND="+sshCmd)
		// The host key the first fetch accepted is pinned from then on.
		pin = func() {
			if b, err := os.ReadFile(kh); err == nil && string(b) != cfg.KnownHosts {
				if err := s.pinHostKey(ctx, app, cfg, string(b)); err != nil {
					log.Error("webhook: recording the repository's host key", "err", err)
				}
			}
		}
	}
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(string(out)))
		}
		return strings.TrimSpace(string(out)), nil
	}
	steps := [][]string{
		{"init", "--quiet", "--bare", repo},
		{"--git-dir", repo, "fetch", "--quiet", "--depth", "50", cfg.Repo, "refs/heads/" + cfg.Branch},
	}
	for _, a := range steps {
		if _, err := git(a...); err != nil {
			failed(err)
			return
		}
	}
	pin()
	// Only the branch's tip deploys: an older delivery (replayed, or
	// overtaken by a newer push) must not bring back old code.
	if tip, err := git("--git-dir", repo, "rev-parse", "--verify", "--end-of-options", "FETCH_HEAD^{commit}"); err == nil && tip != sha {
		log.Info("webhook: not the branch's tip; ignored", "sha", sha, "tip", tip)
		s.Engine.Store().AddEvent(ctx, store.AppEvent{App: app, Kind: store.EventDeploy, Message: fmt.Sprintf("webhook delivery %s: commit %s is no longer the tip of %s (%s is): ignored, the newer push deploys", delivery, sha, cfg.Branch, tip)})
		return
	}
	if _, err := git("--git-dir", repo, "cat-file", "-e", sha+"^{commit}"); err != nil {
		failed(fmt.Errorf("commit %s is not in %s %s", sha, cfg.Repo, cfg.Branch))
		return
	}
	os.MkdirAll(tree, 0o700)
	if _, err := git("--git-dir", repo, "--work-tree", tree, "checkout", "--quiet", "--force", sha, "--", "."); err != nil {
		failed(err)
		return
	}
	req.Dir = tree
	req.Commit.Author, _ = git("--git-dir", repo, "log", "-1", "--format=%an <%ae>", sha)
	req.Commit.Message, _ = git("--git-dir", repo, "log", "-1", "--format=%s", sha)
	status, err := s.pipelines().Run(ctx, req, func(engine.Event) {})
	log.Info("webhook: pipeline done", "status", status, "err", err)
}
