package client

import (
	"context"
	"net/url"

	"github.com/moorage/moorage/internal/api"
)

// ExportKubernetes returns the Kubernetes manifests of app's release
// (release "" is the active one) for namespace ("" is the app's name),
// running image ("" is the release's own).
func (c *Client) ExportKubernetes(ctx context.Context, app, release, namespace, image string) (*api.KubernetesExport, error) {
	q := url.Values{}
	for k, v := range map[string]string{api.QueryExportRelease: release, api.QueryExportNamespace: namespace, api.QueryExportImage: image} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/v1/apps/" + url.PathEscape(app) + "/export/kubernetes"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var v api.KubernetesExport
	if err := c.getJSON(ctx, path, &v); err != nil {
		return nil, err
	}
	return &v, nil
}
