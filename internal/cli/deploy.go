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
	cmd := &cobra.Command{
		Use:   "deploy [DIR]",
		Short: "Deploy the app in DIR (default .) as a new release",
		Long: `Upload DIR (skipping .git/, .moorage/ and what .moorageignore or .dockerignore
lists) and deploy it: build, release tasks, checks, new instances started beside
the old ones, one health-gated cutover, then the old release stops. Any failure
leaves the active release serving, untouched.

The deploy goes on to a consistent end on the server if this command is
interrupted; follow it with 'moorage deploys'.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
	f.StringVar(&o.Runtime, "runtime", "", "override the spec's runtime: docker or process")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the plan that would run (the text its journal would record) and change nothing: no lock, no build, no release")
	f.BoolVar(&asJSON, "json", false, "print events as NDJSON")
	f.BoolVarP(&verbose, "verbose", "v", false, "also print the plan")
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
