// Package cli implements moorage's commands, one file per command. Commands
// talk to the server only through internal/client; the server and up
// commands run a daemon in this process through the daemon.Host that
// cmd/moorage passes to Main (internal/server's), so that this package
// reaches none of the server's internals.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/moorage/moorage/internal/client"
	"github.com/moorage/moorage/internal/daemon"
	"github.com/moorage/moorage/internal/spec"
)

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// globals are the flags every command shares.
type globals struct {
	host      string
	remoteBin string
	app       string
	stdout    io.Writer
	stderr    io.Writer
	clients   []*client.Client // closed when the command is done
	daemons   daemon.Host      // runs the daemon of server and up
}

// Main runs the CLI and returns the exit code. The server and up commands
// run daemons of h (internal/server.Host).
func Main(args []string, h daemon.Host) int {
	return run(args, os.Stdout, os.Stderr, h)
}

func run(args []string, stdout, stderr io.Writer, h daemon.Host) int {
	g := &globals{stdout: stdout, stderr: stderr, daemons: h}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	for _, c := range g.clients {
		c.Close()
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "error:", err)
	return 1
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "moorage",
		Short: "Deploy multi-process web apps onto your server, with zero-downtime releases and instant rollbacks",
		Long: `moorage turns a Linux server into a home for multi-process web apps: web, workers,
a singleton scheduler, release tasks and accessories, deployed with health-gated,
all-or-nothing cutovers, instant rollbacks and a built-in proxy.

Run 'moorage up' in an app directory to try it, or 'moorage server' on a host and
'moorage deploy' from your machine.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.host, "host", "", "server address: unix:///path/moorage.sock, or ssh://[user@]host[:port][/path/moorage.sock] (default $MOORAGE_HOST, else the default data dir's socket)")
	root.PersistentFlags().StringVar(&g.remoteBin, "remote-bin", "", "with an ssh:// host: the command that runs moorage there (default $MOORAGE_REMOTE_BIN, else moorage from the remote PATH)")
	root.PersistentFlags().StringVarP(&g.app, "app", "a", "", "app name (default: the app of ./moorage.yaml)")
	root.AddCommand(
		newServerCmd(g), newUpCmd(g), newInitCmd(g), newDeployCmd(g), newRollbackCmd(g),
		newReleasesCmd(g), newExportCmd(g), newDeploysCmd(g), newPsCmd(g), newLogsCmd(g), newVersionCmd(g), newAppsCmd(g),
		newConfigCmd(g), newScaleCmd(g), newRunCmd(g), newBackupCmd(g),
		newPruneCmd(g), newAccessoryCmd(g), newMaintenanceCmd(g), newCertsCmd(g), newVolumeCmd(g),
		newDialStdioCmd(g), newDashboardCmd(g),
		newCheckCmd(g), newNotifyCmd(g), newRegistryCmd(g), newPipelineCmd(g),
		newGitRemoteCmd(g), newGitShellCmd(g), newGitHookCmd(g), newWebhookCmd(g),
	)
	root.AddCommand(newStopStartCmds(g)...)
	return root
}

// newDaemon returns a daemon of cfg (server, up).
func (g *globals) newDaemon(cfg daemon.Config) (daemon.Daemon, error) {
	if g.daemons.New == nil {
		return nil, errors.New("this build of moorage runs no server")
	}
	return g.daemons.New(cfg), nil
}

func (g *globals) client() (*client.Client, error) {
	c, err := client.NewWith(client.Options{Host: g.host, RemoteBin: g.remoteBin})
	if err != nil {
		return nil, err
	}
	g.clients = append(g.clients, c)
	return c, nil
}

// appClient resolves the app and a client of the server.
func (g *globals) appClient() (string, *client.Client, error) {
	app, err := g.appName()
	if err != nil {
		return "", nil, err
	}
	c, err := g.client()
	return app, c, err
}

// appName resolves the app: -a, else the spec in the current directory.
func (g *globals) appName() (string, error) {
	if g.app != "" {
		return g.app, nil
	}
	return appFromSpec(".")
}

// appFromSpec reads the app name from DIR/moorage.yaml. A spec with other
// mistakes still names its app: commands like logs and ps must work while
// the spec is being edited.
func appFromSpec(dir string) (string, error) {
	p := filepath.Join(dir, "moorage.yaml")
	data, err := os.ReadFile(p)
	if err != nil {
		if os.IsNotExist(err) {
			return "", fmt.Errorf("no app given: use -a APP, or run in a directory with a moorage.yaml (create one with `moorage init`)")
		}
		return "", err
	}
	if sp, err := spec.Parse(p, data); err == nil {
		return sp.App, nil
	}
	var head struct {
		App string `yaml:"app"`
	}
	if yaml.Unmarshal(data, &head) == nil && head.App != "" {
		return head.App, nil
	}
	return "", fmt.Errorf("%s names no app; add `app: NAME` or use -a APP", p)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

func sortStrings(s []string) { sort.Strings(s) }
