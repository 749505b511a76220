package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/archive"
)

// DeployOptions tune a deploy.
type DeployOptions struct {
	App      string // must match the spec's app when set
	SpecFile string // spec file name inside dir (default moorage.yaml)
	Runtime  string // override the spec's runtime
	Wait     bool   // wait for the app's lock instead of being refused
	DryRun   bool   // plan only, change nothing (see PlanDeploy)
	// Extra files added to the upload (name → content), e.g. the spec
	// `moorage deploy -f` writes from compose files.
	Extra map[string][]byte
}

// uploadIgnore is what a deploy of dir leaves out of the upload: what
// .moorageignore (or .dockerignore) lists, except the spec file, which the
// deploy needs whatever the ignore file says (listing moorage.yaml in
// .dockerignore is the usual way to keep it out of images; the image build
// still honours that).
func uploadIgnore(dir, specFile string) (*archive.Ignore, error) {
	ig, err := archive.LoadIgnore(dir)
	if err != nil {
		return nil, err
	}
	if specFile == "" {
		specFile = "moorage.yaml"
	}
	if err := ig.Add("!" + specFile); err != nil {
		return nil, fmt.Errorf("spec file %s: %w", specFile, err)
	}
	return ig, nil
}

// Deploy uploads dir and streams the deploy's events to fn. The upload is
// packed on the fly (no temporary file) and skips .git/, .moorage/ and what
// .moorageignore (or .dockerignore) lists.
func (c *Client) Deploy(ctx context.Context, dir string, o DeployOptions, fn func(api.Event)) (Result, error) {
	if o.DryRun {
		if err := c.canDryRun(ctx); err != nil {
			return Result{}, err
		}
	}
	ig, err := uploadIgnore(dir, o.SpecFile)
	if err != nil {
		return Result{}, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := archive.PackWith(dir, pw, archive.PackOptions{Ignore: ig, Extra: o.Extra})
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	q := url.Values{}
	if o.App != "" {
		q.Set("app", o.App)
	}
	if o.Runtime != "" {
		q.Set("runtime", o.Runtime)
	}
	if o.Wait {
		q.Set("wait", "1")
	}
	dryRunQuery(q, o.DryRun)
	hdr := http.Header{"Content-Type": {"application/gzip"}}
	if o.SpecFile != "" {
		hdr.Set(api.HeaderSpec, o.SpecFile)
	}
	// The release records the commit a work tree is at (and whether it
	// had changes: git describe's -dirty).
	setCommit(hdr, GitCommit(dir))
	resp, err := c.do(ctx, http.MethodPost, "/v1/deploys?"+q.Encode(), pr, hdr)
	if err != nil {
		return Result{}, fmt.Errorf("deploy %s: %w", dir, err)
	}
	return streamEvents(resp, fn)
}
