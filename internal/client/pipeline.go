package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"

	"github.com/moorage/moorage/internal/archive"
	"github.com/moorage/moorage/internal/engine"
)

// Commit names what a pipeline deploys.
type Commit struct {
	SHA, Branch, Author, Message string
}

// GitCommit reads the commit checked out in dir (empty when dir is not a
// git work tree or git is missing). Describe is `git describe --always
// --dirty` there.
func GitCommit(dir string) (c Commit, describe string) {
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
		return Commit{}, ""
	}
	c.Branch = git("rev-parse", "--abbrev-ref", "HEAD")
	c.Author = git("log", "-1", "--format=%an <%ae>")
	c.Message = git("log", "-1", "--format=%s")
	return c, git("describe", "--always", "--dirty", "--tags")
}

// Pipeline uploads dir and runs the server's pipeline on it (fetch is the
// upload; then build, test, check, deploy, notify), streaming its events.
func (c *Client) Pipeline(ctx context.Context, dir string, commit Commit, o DeployOptions, fn func(engine.Event)) (Result, error) {
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
	hdr.Set("X-Moorage-Commit-Sha", commit.SHA)
	hdr.Set("X-Moorage-Commit-Branch", commit.Branch)
	hdr.Set("X-Moorage-Commit-Author", commit.Author)
	hdr.Set("X-Moorage-Commit-Message", url.QueryEscape(commit.Message))
	resp, err := c.do(ctx, http.MethodPost, "/v1/pipelines?"+q.Encode(), pr, hdr)
	if err != nil {
		return Result{}, fmt.Errorf("pipeline %s: %w", dir, err)
	}
	return streamEvents(resp, fn)
}
