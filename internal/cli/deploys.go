package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
)

func newDeploysCmd(g *globals) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "deploys [ID]",
		Short: "Show deploy history with step timings, or one deploy in full",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				id, err := strconv.ParseInt(strings.TrimPrefix(args[0], "#"), 10, 64)
				if err != nil {
					return fmt.Errorf("deploy id %q: use the number shown by `moorage deploys`", args[0])
				}
				d, err := c.GetDeploy(cmd.Context(), app, id)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(g.stdout).Encode(d)
				}
				printDeploy(g, *d, true)
				return nil
			}
			ds, err := c.Deploys(cmd.Context(), app, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(ds)
			}
			if len(ds) == 0 {
				fmt.Fprintf(g.stdout, "%s has no deploys yet\n", app)
			}
			for i, d := range ds {
				if i > 0 {
					fmt.Fprintln(g.stdout)
				}
				printDeploy(g, d, false)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVarP(&limit, "limit", "n", 10, "how many deploys")
	return cmd
}

func printDeploy(g *globals, d api.Deploy, full bool) {
	total := "running"
	if !d.EndedAt.IsZero() {
		total = dur(d.EndedAt.Sub(d.StartedAt))
	}
	target := d.Release
	if d.From != "" {
		target = d.From + " → " + d.Release
	}
	fmt.Fprintf(g.stdout, "#%d %s %s %s: %s in %s, %s by %s\n", d.ID, d.Kind, d.App, target, d.Status, total, ago(d.StartedAt), d.Owner)
	if d.Reason != "" {
		fmt.Fprintf(g.stdout, "  reason: %s\n", d.Reason)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	for _, s := range d.Steps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", mark(s.Outcome), s.Name, dur(s.Duration), s.Detail)
	}
	tw.Flush()
	if full {
		for _, s := range d.Steps {
			if strings.TrimSpace(s.Output) == "" {
				continue
			}
			fmt.Fprintf(g.stdout, "\n--- %d. %s (%s)\n%s\n", s.Seq, s.Name, s.Outcome, strings.TrimRight(s.Output, "\n"))
		}
		if d.Plan != "" {
			fmt.Fprintf(g.stdout, "\n--- plan\n%s", d.Plan)
		}
	}
}

func mark(outcome string) string {
	switch outcome {
	case "ok":
		return "✓"
	case "failed":
		return "✗"
	case "running":
		return "…"
	case "interrupted":
		return "!"
	}
	return "-"
}
