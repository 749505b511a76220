package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/archive"
)

// Check uploads dir like Deploy and returns the server's preflight report
// (`moorage check`): nothing that runs changes.
func (c *Client) Check(ctx context.Context, dir string, o DeployOptions) (*api.CheckReport, error) {
	ig, err := uploadIgnore(dir, o.SpecFile)
	if err != nil {
		return nil, err
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
	resp, err := c.do(ctx, http.MethodPost, "/v1/checks?"+q.Encode(), pr, hdr)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", dir, err)
	}
	defer resp.Body.Close()
	var rep api.CheckReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return nil, fmt.Errorf("check %s: reading the report: %w", dir, err)
	}
	return &rep, nil
}
