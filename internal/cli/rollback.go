package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
)

func newRollbackCmd(g *globals) *cobra.Command {
	var to string
	var req api.RollbackRequest
	var asJSON, verbose bool
	cmd := &cobra.Command{
		Use:   "rollback [--to vN]",
		Short: "Bring back an earlier release, code and config",
		Long: `Bring back an earlier release (default: the one active before the current
one) as a new release: its artifact and its config, through the same
health-gated cutover as a deploy. Release tasks are skipped unless --run-tasks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := g.appName()
			if err != nil {
				return err
			}
			if to != "" {
				v, err := strconv.Atoi(strings.TrimPrefix(to, "v"))
				if err != nil || v <= 0 {
					return fmt.Errorf("--to %q: give a release like v3 (see `moorage releases`)", to)
				}
				req.To = v
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p := newProgress(g, asJSON, verbose)
			p.dryRun = req.DryRun
			res, err := c.Rollback(cmd.Context(), app, req, p.Event)
			p.Finish(opTitle("rollback", res.Deploy, app), res, err)
			if err != nil {
				return &exitError{code: 1}
			}
			if !res.OK() {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "the release to bring back (default: the previous one)")
	f.BoolVar(&req.Wait, "wait", false, "wait for an operation in progress instead of being refused")
	f.BoolVar(&req.RunTasks, "run-tasks", false, "run the release tasks again")
	f.BoolVar(&req.DryRun, "dry-run", false, "print the plan that would run (the text its journal would record) and change nothing")
	f.BoolVar(&asJSON, "json", false, "print events as NDJSON")
	f.BoolVarP(&verbose, "verbose", "v", false, "also print the plan")
	return cmd
}
