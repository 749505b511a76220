package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/client"
	"github.com/moorage/moorage/internal/compose"
)

// composeFlags are the docker compose flags `deploy -f` and `init --from`
// take.
type composeFlags struct {
	files    []string
	profiles []string
	envFiles []string
}

func (c *composeFlags) add(cmd *cobra.Command, fileFlag, fileShort, fileUsage string) {
	f := cmd.Flags()
	f.StringArrayVarP(&c.files, fileFlag, fileShort, nil, fileUsage)
	f.StringArrayVar(&c.profiles, "profile", nil, "compose profile to enable (repeatable)")
	f.StringArrayVar(&c.envFiles, "env-file", nil, "compose env file for interpolation (default: .env in the project directory)")
}

func (c *composeFlags) load(cmd *cobra.Command, app string) (*compose.Result, error) {
	return compose.Load(cmd.Context(), compose.Options{Files: c.files, Profiles: c.profiles, EnvFiles: c.envFiles, App: app})
}

// printMapping shows what each compose service became, and the warnings.
func printMapping(w io.Writer, r *compose.Result) {
	fmt.Fprintf(w, "from compose (%s):\n", plural(len(r.Services), "service", "services"))
	for _, m := range r.Services {
		fmt.Fprintf(w, "  %s\n", m)
	}
	for _, d := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", d)
	}
}

// deployCompose is `moorage deploy -f docker-compose.yaml`: the project
// directory is uploaded with the spec written from the compose files.
func deployCompose(cmd *cobra.Command, g *globals, cf *composeFlags, o client.DeployOptions, asJSON, verbose bool) error {
	res, err := cf.load(cmd, g.app)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	out := g.stdout
	if asJSON {
		out = g.stderr
	}
	printMapping(out, res)
	o.App = g.app
	o.SpecFile = compose.SpecName
	o.Extra = map[string][]byte{compose.SpecName: res.YAML}
	c, err := g.client()
	if err != nil {
		return err
	}
	return deploy(cmd, g, c, res.Dir, res.Spec, o, asJSON, verbose)
}

// initFromCompose is `moorage init --from docker-compose.yaml`.
func initFromCompose(cmd *cobra.Command, g *globals, cf *composeFlags, force bool) error {
	res, err := cf.load(cmd, g.app)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	p := filepath.Join(res.Dir, "moorage.yaml")
	if _, err := os.Stat(p); err == nil && !force {
		return fmt.Errorf("%s exists; use --force to overwrite it", p)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	printMapping(g.stdout, res)
	if err := os.WriteFile(p, res.YAML, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "wrote %s for app %q; deploy it with `moorage deploy %s`\n", p, res.Spec.App, res.Dir)
	return nil
}
