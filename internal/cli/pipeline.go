package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/client"
)

func newPipelineCmd(g *globals) *cobra.Command {
	var o client.DeployOptions
	var asJSON, verbose bool
	cmd := &cobra.Command{
		Use:   "pipeline [DIR]",
		Short: "Run the server's pipeline on DIR: build, test, check, deploy, notify",
		Long: `Upload DIR (like 'moorage deploy') and run the pipeline the server runs for a
git push or a webhook: a throwaway build runs the spec's test: commands, then
'moorage check' runs, and only then the deploy. A failing stage stops it and
leaves the active release serving. Each stage is journaled (see
'moorage deploys'); when DIR is a git work tree its commit is recorded.`,
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
			c, err := g.client()
			if err != nil {
				return err
			}
			commit := client.GitCommit(dir)
			p := newProgress(g, asJSON, verbose)
			if !asJSON {
				at := ""
				if commit.Describe != "" {
					at = " at " + commit.Describe
				}
				fmt.Fprintf(g.stdout, "pipeline of %s from %s%s on %s\n", sp.App, dir, at, c.Addr())
			}
			res, err := c.Pipeline(cmd.Context(), dir, commit, o, p.Event)
			p.Finish(opTitle("pipeline", res.Deploy, sp.App), res, err)
			if err != nil {
				if cmd.Context().Err() != nil {
					return &exitError{code: 130, err: fmt.Errorf("interrupted; the pipeline goes on on the server: see `moorage deploys -a %s`", sp.App)}
				}
				return &exitError{code: 1}
			}
			if !res.OK() {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Runtime, "runtime", "", "override the spec's runtime: docker, swarm, kubernetes or process")
	f.BoolVar(&asJSON, "json", false, "print events as NDJSON")
	f.BoolVarP(&verbose, "verbose", "v", false, "also print the plan")
	return cmd
}
