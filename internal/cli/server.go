package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/paths"
	"github.com/moorage/moorage/internal/server"
)

func newServerCmd(g *globals) *cobra.Command {
	var cfg server.Config
	var logLevel string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the moorage host daemon",
		Long: `Run the moorage host daemon: the control API on a unix socket, the proxy, and
the runtimes. Stopping it (SIGTERM, SIGINT) leaves the apps running; starting it
again re-adopts them and finishes or undoes a deploy a crash interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lvl, err := parseLevel(logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl}))
			srv := server.New(cfg)
			ctx := cmd.Context()
			if err := srv.Start(ctx); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
			case err := <-srv.Err():
				cfg.Logger.Error("listener failed", "err", err)
			}
			sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", paths.DefaultDataDir(), "where moorage keeps its state, releases, volumes and logs")
	f.StringVar(&cfg.Socket, "socket", "", "control socket (default <data-dir>/moorage.sock)")
	f.StringVar(&cfg.HTTPAddr, "http", ":80", "address of the proxy's HTTP listener")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&cfg.DockerPrefix, "docker-prefix", "moorage", "prefix of the names and labels of the docker runtime's containers, networks, volumes and images")
	f.StringVar(&cfg.DockerHost, "docker-host", os.Getenv("DOCKER_HOST"), "the Docker Engine's address (default $DOCKER_HOST, else the default socket)")
	return cmd
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("--log-level %q: use debug, info, warn or error", s)
	}
	return l, nil
}
