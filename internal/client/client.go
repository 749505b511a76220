// Package client is the typed client of moorage's control API. It talks
// HTTP over the server's unix socket, or over ssh to `moorage dial-stdio`
// on the server's host.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/paths"
)

// ErrUnreachable is returned when no server answers at the address.
var ErrUnreachable = errors.New("cannot reach the moorage server")

// Error is an error answer of the API.
type Error struct {
	Status int
	Code   string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Client calls one server.
type Client struct {
	hc    *http.Client
	tr    *http.Transport
	base  string
	addr  string
	Owner string // sent with operations: who runs them
}

// Options say how to reach a server.
type Options struct {
	// Host is the server's address: unix:///path/to/moorage.sock, a bare
	// socket path, ssh://[user@]host[:port][/path/to/moorage.sock], or ""
	// for $MOORAGE_HOST, else the default data dir's socket.
	Host string
	// RemoteBin is the command that runs moorage on an ssh host (default
	// $MOORAGE_REMOTE_BIN, else "moorage" from the remote PATH).
	RemoteBin string
	// SSHCommand replaces "ssh" for ssh hosts (default
	// $MOORAGE_SSH_COMMAND); sh runs it with ssh's arguments appended.
	SSHCommand string
}

// New returns a client for host (see Options.Host).
func New(host string) (*Client, error) {
	return NewWith(Options{Host: host})
}

// NewWith returns a client for the server o names.
func NewWith(o Options) (*Client, error) {
	binGiven := o.RemoteBin != ""
	o = o.withDefaults()
	if binGiven && !strings.HasPrefix(o.Host, "ssh://") {
		return nil, fmt.Errorf("--remote-bin is for ssh:// hosts; give one with --host or MOORAGE_HOST")
	}
	host := o.Host
	if host == "" {
		host = "unix://" + paths.Socket(paths.DefaultDataDir())
	}
	tr := &http.Transport{
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	var addr string
	switch {
	case strings.HasPrefix(host, "ssh://"):
		t, err := parseSSH(host)
		if err != nil {
			return nil, err
		}
		d := &sshDialer{target: t, sshCommand: o.SSHCommand, remoteBin: o.RemoteBin}
		tr.DialContext, addr = d.DialContext, t.String()
	case strings.HasPrefix(host, "unix://"), strings.HasPrefix(host, "/"), strings.HasPrefix(host, "."):
		sock := strings.TrimPrefix(host, "unix://")
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		addr = "unix://" + sock
	default:
		return nil, fmt.Errorf("%w: --host %q: use unix:///path/to/moorage.sock or %s", ErrBadHost, host, sshHostForm)
	}
	return &Client{hc: &http.Client{Transport: tr}, tr: tr, base: "http://moorage", addr: addr, Owner: DefaultOwner()}, nil
}

// Close closes the client's idle connections (over ssh: ends their ssh
// processes). Streams still open are closed by whoever holds them.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// Addr is the address the client talks to.
func (c *Client) Addr() string { return c.addr }

// DefaultOwner is "user@host (pid N)".
func DefaultOwner() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s (pid %d)", name, host, os.Getpid())
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set(api.HeaderOwner, c.Owner)
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var se *SSHError
		if errors.As(err, &se) {
			if h := se.hint(); h != "" {
				return nil, fmt.Errorf("%w at %s: %w (%s)", ErrUnreachable, c.addr, se, h)
			}
			return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, c.addr, se)
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("%w at %s: %v (is `moorage server` running? set --host or MOORAGE_HOST)", ErrUnreachable, c.addr, op.Err)
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, &Error{Status: resp.StatusCode, Code: e.Code, Msg: e.Error}
		}
		return nil, &Error{Status: resp.StatusCode, Code: "internal", Msg: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))}
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// Version asks the server who it is.
func (c *Client) Version(ctx context.Context) (api.Version, error) {
	var v api.Version
	return v, c.getJSON(ctx, "/v1/version", &v)
}

// Apps lists the server's apps.
func (c *Client) Apps(ctx context.Context) ([]api.App, error) {
	var v []api.App
	return v, c.getJSON(ctx, "/v1/apps", &v)
}

// Status returns an app's state.
func (c *Client) Status(ctx context.Context, app string) (*api.AppStatus, error) {
	var v api.AppStatus
	return &v, c.getJSON(ctx, "/v1/apps/"+url.PathEscape(app), &v)
}

// Releases lists an app's releases, newest first.
func (c *Client) Releases(ctx context.Context, app string) ([]api.Release, error) {
	var v []api.Release
	return v, c.getJSON(ctx, "/v1/apps/"+url.PathEscape(app)+"/releases", &v)
}

// Deploys lists an app's recent deploys with their steps.
func (c *Client) Deploys(ctx context.Context, app string, limit int) ([]api.Deploy, error) {
	var v []api.Deploy
	return v, c.getJSON(ctx, "/v1/apps/"+url.PathEscape(app)+"/deploys?limit="+strconv.Itoa(limit), &v)
}

// GetDeploy returns one deploy.
func (c *Client) GetDeploy(ctx context.Context, app string, id int64) (*api.Deploy, error) {
	var v api.Deploy
	return &v, c.getJSON(ctx, fmt.Sprintf("/v1/apps/%s/deploys/%d", url.PathEscape(app), id), &v)
}

// Result is how an operation ended.
type Result struct {
	Status string // succeeded, failed, rolled_back, interrupted; planned (a dry run)
	Text   string
	Deploy int64
}

// OK reports whether the operation succeeded (a dry run: it planned).
func (r Result) OK() bool { return r.Status == "succeeded" || r.Status == api.StatusPlanned }

// streamEvents reads NDJSON events until the done event.
func streamEvents(resp *http.Response, fn func(api.Event)) (Result, error) {
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var res Result
	for sc.Scan() {
		var ev api.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return res, fmt.Errorf("bad event from server: %w", err)
		}
		if ev.Deploy != 0 {
			res.Deploy = ev.Deploy
		}
		if fn != nil {
			fn(ev)
		}
		if ev.Type == api.EventDone {
			res.Status, res.Text = ev.Status, ev.Text
			return res, nil
		}
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("lost the server's event stream (%w): the server stopped or the connection broke; see `moorage deploys` for how the operation ended", err)
	}
	return res, errors.New("the server closed the event stream before the operation ended; see `moorage deploys`")
}

// Rollback rolls app back and streams events to fn.
func (c *Client) Rollback(ctx context.Context, app string, req api.RollbackRequest, fn func(api.Event)) (Result, error) {
	if req.DryRun {
		if err := c.canDryRun(ctx); err != nil {
			return Result{}, err
		}
	}
	return c.postStream(ctx, "/v1/apps/"+url.PathEscape(app)+"/rollback", req, fn)
}

// LogsOptions select log lines.
type LogsOptions struct {
	Service string
	Release string
	Tail    int
	Since   string
	Follow  bool
}

// Logs streams an app's log lines to fn.
func (c *Client) Logs(ctx context.Context, app string, o LogsOptions, fn func(api.LogLine)) error {
	q := url.Values{}
	if o.Service != "" {
		q.Set("service", o.Service)
	}
	if o.Release != "" {
		q.Set("release", o.Release)
	}
	if o.Tail > 0 {
		q.Set("n", strconv.Itoa(o.Tail))
	}
	if o.Since != "" {
		q.Set("since", o.Since)
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(app)+"/logs?"+q.Encode(), nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var l struct {
			api.LogLine
			Error string `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("bad log line from server: %w", err)
		}
		if l.Error != "" {
			return errors.New(l.Error)
		}
		fn(l.LogLine)
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

// postStream posts a JSON body and streams the operation's events.
func (c *Client) postStream(ctx context.Context, path string, body any, fn func(api.Event)) (Result, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return Result{}, err
	}
	resp, err := c.do(ctx, http.MethodPost, path, bytes.NewReader(b), http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		return Result{}, err
	}
	return streamEvents(resp, fn)
}

// Config lists an app's config, secrets masked.
func (c *Client) Config(ctx context.Context, app string) ([]api.ConfigVar, error) {
	var v []api.ConfigVar
	return v, c.getJSON(ctx, "/v1/apps/"+url.PathEscape(app)+"/config", &v)
}

// ChangeConfig sets or unsets config values (rolled out unless NoDeploy).
func (c *Client) ChangeConfig(ctx context.Context, app string, req api.ConfigRequest, fn func(api.Event)) (Result, error) {
	if req.DryRun {
		if err := c.canDryRun(ctx); err != nil {
			return Result{}, err
		}
	}
	return c.postStream(ctx, "/v1/apps/"+url.PathEscape(app)+"/config", req, fn)
}

// Scale changes replica counts.
func (c *Client) Scale(ctx context.Context, app string, req api.ScaleRequest, fn func(api.Event)) (Result, error) {
	if req.DryRun {
		if err := c.canDryRun(ctx); err != nil {
			return Result{}, err
		}
	}
	return c.postStream(ctx, "/v1/apps/"+url.PathEscape(app)+"/scale", req, fn)
}

// Backups lists an app's backups, newest first.
func (c *Client) Backups(ctx context.Context, app string) ([]api.Backup, error) {
	var v []api.Backup
	return v, c.getJSON(ctx, "/v1/apps/"+url.PathEscape(app)+"/backups", &v)
}

// CreateBackup backs up an app's volumes and accessories.
func (c *Client) CreateBackup(ctx context.Context, app string, req api.BackupRequest, fn func(api.Event)) (Result, error) {
	return c.postStream(ctx, "/v1/apps/"+url.PathEscape(app)+"/backups", req, fn)
}

// RestoreBackup restores a backup into its app.
func (c *Client) RestoreBackup(ctx context.Context, app, id string, wait bool, fn func(api.Event)) (Result, error) {
	return c.postStream(ctx, "/v1/apps/"+url.PathEscape(app)+"/backups/"+url.PathEscape(id)+"/restore", map[string]bool{"wait": wait}, fn)
}

// ImportBackup registers an archive on the server (with its manifest next
// to it) so that it can be restored.
func (c *Client) ImportBackup(ctx context.Context, app, file string) (*api.Backup, error) {
	var b api.Backup
	return &b, c.sendJSON(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/backups/import", map[string]string{"file": file}, &b)
}

// VerifyBackup restores a backup into scratch space and checks it.
func (c *Client) VerifyBackup(ctx context.Context, app, id string, fn func(api.Event)) (Result, error) {
	return c.postStream(ctx, "/v1/apps/"+url.PathEscape(app)+"/backups/"+url.PathEscape(id)+"/verify", struct{}{}, fn)
}

// postJSON posts a JSON body and decodes a JSON answer.
func (c *Client) sendJSON(ctx context.Context, method, path string, body, v any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := c.do(ctx, method, path, rd, http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if v == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Prune removes what an app no longer needs (or says what it would).
func (c *Client) Prune(ctx context.Context, app string, dryRun bool) (*api.PruneReport, error) {
	var rep api.PruneReport
	return &rep, c.sendJSON(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/prune", map[string]bool{"dry_run": dryRun}, &rep)
}

// RestartAccessory restarts an accessory.
func (c *Client) RestartAccessory(ctx context.Context, app, name string, wait bool, fn func(api.Event)) (Result, error) {
	return c.AccessoryOp(ctx, app, name, "restart", api.AccessoryRequest{Wait: wait}, fn)
}

// AccessoryOp restarts, stops, starts or removes an accessory (action).
func (c *Client) AccessoryOp(ctx context.Context, app, name, action string, req api.AccessoryRequest, fn func(api.Event)) (Result, error) {
	return c.postStream(ctx, "/v1/apps/"+url.PathEscape(app)+"/accessories/"+url.PathEscape(name)+"/"+url.PathEscape(action), req, fn)
}

// Destroy destroys an app (`moorage apps destroy`).
func (c *Client) Destroy(ctx context.Context, app string, req api.DestroyRequest, fn func(api.Event)) (Result, error) {
	return c.postStream(ctx, "/v1/apps/"+url.PathEscape(app)+"/destroy", req, fn)
}

// SetMaintenance turns maintenance mode on (m non-nil) or off.
func (c *Client) SetMaintenance(ctx context.Context, app string, m *api.Maintenance) error {
	if m == nil {
		return c.sendJSON(ctx, http.MethodDelete, "/v1/apps/"+url.PathEscape(app)+"/maintenance", nil, nil)
	}
	return c.sendJSON(ctx, http.MethodPut, "/v1/apps/"+url.PathEscape(app)+"/maintenance", m, nil)
}

// Certs lists the server's certificates (of one app when app is set).
func (c *Client) Certs(ctx context.Context, app string) ([]api.CertInfo, error) {
	var v []api.CertInfo
	return v, c.getJSON(ctx, "/v1/certs?app="+url.QueryEscape(app), &v)
}

// RenewCert renews a certificate now.
func (c *Client) RenewCert(ctx context.Context, name string) error {
	return c.sendJSON(ctx, http.MethodPost, "/v1/certs/renew", map[string]string{"name": name}, nil)
}

// CA returns the root certificate of the server's internal CA (PEM).
func (c *Client) CA(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/ca", nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// RemoveVolume deletes a volume and its data.
func (c *Client) RemoveVolume(ctx context.Context, app, name string) error {
	return c.sendJSON(ctx, http.MethodDelete, "/v1/apps/"+url.PathEscape(app)+"/volumes/"+url.PathEscape(name), nil, nil)
}
