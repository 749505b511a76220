package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"

	"github.com/moorage/moorage/internal/api"

	"github.com/moorage/moorage/internal/archive"
)

// Commit names what a deploy or pipeline uploads.
type Commit = api.Commit

// GitCommit reads the commit checked out in dir, with `git describe
// --always --dirty --tags` there (empty when dir is not a git work tree or
// git is missing).
func GitCommit(dir string) (c Commit) {
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	c.SHA = git("rev-parse", "HEAD")
	if c.SHA == "" {
		return Commit{}
	}
	c.Branch = git("rev-parse", "--abbrev-ref", "HEAD")
	c.Author = git("log", "-1", "--format=%an <%ae>")
	c.Message = git("log", "-1", "--format=%s")
	c.Describe = git("describe", "--always", "--dirty", "--tags")
	return c
}

// setCommit names commit in an upload's headers.
func setCommit(hdr http.Header, c Commit) {
	if c.SHA == "" {
		return
	}
	hdr.Set(api.HeaderCommitSHA, c.SHA)
	hdr.Set(api.HeaderCommitBranch, c.Branch)
	hdr.Set(api.HeaderCommitAuthor, c.Author)
	hdr.Set(api.HeaderCommitMessage, url.QueryEscape(c.Message))
	hdr.Set(api.HeaderCommitDescribe, c.Describe)
}

// Pipeline uploads dir and runs the server's pipeline on it (fetch is the
// upload; then build, test, check, deploy, notify), streaming its events.
func (c *Client) Pipeline(ctx context.Context, dir string, commit Commit, o DeployOptions, fn func(api.Event)) (Result, error) {
	ig, err := uploadIgnore(dir, o.SpecFile)
	if err != nil {
		return Result{}, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := archive.Pack(dir, ig, pw)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	q := url.Values{}
	if o.Runtime != "" {
		q.Set("runtime", o.Runtime)
	}
	hdr := http.Header{"Content-Type": {"application/gzip"}}
	setCommit(hdr, commit)
	resp, err := c.do(ctx, http.MethodPost, "/v1/pipelines?"+q.Encode(), pr, hdr)
	if err != nil {
		return Result{}, fmt.Errorf("pipeline %s: %w", dir, err)
	}
	return streamEvents(resp, fn)
}
