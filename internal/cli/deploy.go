package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/client"
	"github.com/moorage/moorage/internal/spec"
)

func newDeployCmd(g *globals) *cobra.Command {
	var o client.DeployOptions
	var asJSON, verbose bool
	var cf composeFlags
	cmd := &cobra.Command{
		Use:   "deploy [DIR]",
		Short: "Deploy the app in DIR (default .) as a new release",
		Long: `Upload DIR (skipping .git/, .moorage/ and what .moorageignore or .dockerignore
lists) and deploy it: build, release tasks, checks, new instances started beside
the old ones, one health-gated cutover, then the old release stops. Any failure
leaves the active release serving, untouched.

The deploy goes on to a consistent end on the server if this command is
interrupted; follow it with 'moorage deploys'.

With -f docker-compose.yaml (several -f merge as in docker compose, with
--profile and .env), the compose project's directory is deployed with the
moorage.yaml written from the compose files; see docs/compose.md.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(cf.files) > 0 {
				if len(args) > 0 {
					return &exitError{code: 2, err: fmt.Errorf("with -f the project directory is the first compose file's; drop %s", args[0])}
				}
				return deployCompose(cmd, g, &cf, o, asJSON, verbose)
			}
			if len(cf.profiles) > 0 || len(cf.envFiles) > 0 {
				return &exitError{code: 2, err: errors.New("--profile and --env-file are for compose files: add -f docker-compose.yaml")}
			}
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			sp, err := loadSpec(dir, o.Runtime)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			o.App = g.app
			c, err := g.client()
			if err != nil {
				return err
			}
			return deploy(cmd, g, c, dir, sp, o, asJSON, verbose)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Wait, "wait", false, "wait for a deploy of the same app in progress instead of being refused")
	f.StringVar(&o.Runtime, "runtime", "", "override the spec's runtime: docker, swarm, kubernetes or process")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the plan that would run (the text its journal would record) and change nothing: no lock, no build, no release")
	f.BoolVar(&asJSON, "json", false, "print events as NDJSON")
	f.BoolVarP(&verbose, "verbose", "v", false, "also print the plan")
	cf.add(cmd, "file", "f", "deploy a docker compose project from this compose file (repeatable: later files override earlier ones)")
	return cmd
}

// loadSpec checks DIR/moorage.yaml locally before uploading anything.
func loadSpec(dir, runtime string) (*spec.Spec, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	p := filepath.Join(dir, "moorage.yaml")
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no moorage.yaml: create one with `moorage init`", dir)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return spec.ParseFor(p, data, runtime)
}

func deploy(cmd *cobra.Command, g *globals, c *client.Client, dir string, sp *spec.Spec, o client.DeployOptions, asJSON, verbose bool) error {
	// The spec's warnings come from the server, for the runtime it deploys on.
	p := newProgress(g, asJSON, verbose)
	p.dryRun = o.DryRun
	if !asJSON && !o.DryRun {
		fmt.Fprintf(g.stdout, "deploying %s from %s to %s\n", sp.App, dir, c.Addr())
	}
	res, err := c.Deploy(cmd.Context(), dir, o, p.Event)
	p.Finish(opTitle("deploy", res.Deploy, sp.App), res, err)
	if err != nil {
		if cmd.Context().Err() != nil {
			return &exitError{code: 130, err: fmt.Errorf("interrupted; the deploy goes on on the server: see `moorage deploys -a %s`", sp.App)}
		}
		return &exitError{code: 1}
	}
	if !res.OK() {
		return &exitError{code: 1}
	}
	return nil
}
