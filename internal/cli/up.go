package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/client"
	"github.com/moorage/moorage/internal/daemon"
	"github.com/moorage/moorage/internal/spec"
)

func newUpCmd(g *globals) *cobra.Command {
	var httpAddr, httpsAddr, runtimeName string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "up [DIR]",
		Short: "Run the app in DIR (default .) with an embedded server, in the foreground",
		Long: `Start an embedded moorage server for the app in DIR (state in DIR/.moorage/),
deploy the app, print its URL and stream its logs. Ctrl-C stops everything.
Running it again re-deploys; the state, volumes and logs are kept in DIR/.moorage/.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			sp, err := loadSpec(abs, runtimeName)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			dataDir := filepath.Join(abs, ".moorage")
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return err
			}
			logFile, err := os.OpenFile(filepath.Join(dataDir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			defer logFile.Close()
			lvl := slog.LevelInfo
			if verbose {
				lvl = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: lvl}))
			// Its own docker prefix: Ctrl-C removes everything it started,
			// and must never touch a server's containers on the same engine.
			sum := sha256.Sum256([]byte(dataDir))
			// A dev run: without --https, routes with tls: are served over
			// plain HTTP (a server refuses them instead).
			srv, err := g.newDaemon(daemon.Config{DataDir: dataDir, HTTPAddr: httpAddr, HTTPSAddr: httpsAddr, Logger: logger,
				StopOnShutdown: true, DockerPrefix: "moorage-up-" + hex.EncodeToString(sum[:4]),
				PlainWhenHTTPSOff: true, AppsAsServerUser: true})
			if err != nil {
				return err
			}
			if httpsAddr == daemon.HTTPSOff {
				warnTLSIgnored(g, sp)
			}
			ctx := cmd.Context()
			if err := srv.Start(ctx); err != nil {
				return err
			}
			defer func() {
				fmt.Fprintln(g.stderr, "\nstopping...")
				sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				if err := srv.Shutdown(sctx); err != nil {
					fmt.Fprintln(g.stderr, "error while stopping:", err)
				}
				fmt.Fprintln(g.stderr, "stopped")
			}()
			c, err := client.New("unix://" + srv.Socket())
			if err != nil {
				return err
			}
			if err := deploy(cmd, g, c, abs, sp, client.DeployOptions{Runtime: runtimeName}, false, verbose); err != nil {
				fmt.Fprintf(g.stderr, "(server log: %s)\n", logFile.Name())
				return err
			}
			fmt.Fprintf(g.stdout, "\n%s is up: %s\n(Ctrl-C to stop; logs follow)\n\n", sp.App, urlOf(srv.HTTPAddr()))
			err = c.Logs(ctx, sp.App, client.LogsOptions{Tail: 20, Follow: true}, newLogPrinter(g, false).print)
			if err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&httpAddr, "http", "127.0.0.1:8080", "address of the proxy")
	f.StringVar(&httpsAddr, "https", daemon.HTTPSOff, "address of an HTTPS listener (e.g. 127.0.0.1:8443 with tls: internal)")
	f.StringVar(&runtimeName, "runtime", "", "override the spec's runtime: docker, swarm, kubernetes or process")
	f.BoolVarP(&verbose, "verbose", "v", false, "print the plan and debug logs")
	return cmd
}

// warnTLSIgnored says which routes' tls: moorage up ignores without --https.
func warnTLSIgnored(g *globals, sp *spec.Spec) {
	if g.daemons.TLSSitesOf == nil {
		return
	}
	for _, s := range g.daemons.TLSSitesOf(sp) {
		fmt.Fprintf(g.stderr, "warning: service %s has tls: %s, but moorage up has HTTPS off: it is served over plain HTTP, without redirects or HSTS (for HTTPS in a dev run: moorage up --https 127.0.0.1:8443 with tls: internal, trusting .moorage/certs/internal/root.crt)\n", s.Service, s.Mode)
	}
}

func urlOf(addr string) string {
	host, port := addr, ""
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host, port = addr[:i], addr[i+1:]
	}
	if host == "" || host == "0.0.0.0" || host == "[::]" || host == "::" {
		host = "127.0.0.1"
	}
	if port == "80" {
		return "http://" + host + "/"
	}
	return "http://" + host + ":" + port + "/"
}
