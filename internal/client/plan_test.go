package client

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moorage/moorage/internal/api"
)

// A dry run against a server that cannot do one (an older moorage, which
// would ignore the flag and carry the operation out) sends nothing and
// says why; against one that can, it is sent.
func TestDryRunNeedsAServerThatCanPlan(t *testing.T) {
	for _, features := range [][]string{nil, {api.FeatureDryRun}} {
		var mu sync.Mutex
		var posts []string
		mux := http.NewServeMux()
		mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(api.Version{Version: "0.9.0", Features: features})
		})
		mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			posts = append(posts, r.URL.Path)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/x-ndjson")
			json.NewEncoder(w).Encode(map[string]any{"type": "done", "status": "planned"})
		})
		sock := filepath.Join(t.TempDir(), "s.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: mux}
		go srv.Serve(ln)
		defer srv.Close()
		c, err := New("unix://" + sock)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		ops := map[string]func() error{
			"rollback": func() error {
				_, err := c.Rollback(ctx, "web", api.RollbackRequest{DryRun: true}, nil)
				return err
			},
			"scale": func() error {
				_, err := c.Scale(ctx, "web", api.ScaleRequest{Replicas: map[string]int{"web": 2}, DryRun: true}, nil)
				return err
			},
			"config": func() error {
				_, err := c.ChangeConfig(ctx, "web", api.ConfigRequest{Unset: []string{"X"}, DryRun: true}, nil)
				return err
			},
			"deploy": func() error {
				_, err := c.Deploy(ctx, t.TempDir(), DeployOptions{DryRun: true}, nil)
				return err
			},
		}
		for name, op := range ops {
			err := op()
			if features == nil {
				if err == nil || !strings.Contains(err.Error(), "cannot plan an operation without carrying it out") || !strings.Contains(err.Error(), "0.9.0") {
					t.Errorf("%s --dry-run against an older server: %v", name, err)
				}
			} else if err != nil && strings.Contains(err.Error(), "cannot plan") {
				t.Errorf("%s --dry-run against a server that can: %v", name, err)
			}
		}
		mu.Lock()
		if features == nil && len(posts) > 0 {
			t.Errorf("an older server was sent %v", posts)
		}
		if features != nil && len(posts) < 3 {
			t.Errorf("a server that can plan was sent only %v", posts)
		}
		mu.Unlock()
	}
}
