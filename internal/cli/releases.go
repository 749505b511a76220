package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newReleasesCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "List an app's releases, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			rels, err := c.Releases(cmd.Context(), app)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(rels)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RELEASE\tDEPLOY\tSTATUS\tCREATED\tCAUSE\tCONFIG\tFORMATION\tCOMMIT")
			pruned, differ := 0, false
			for _, r := range rels {
				mark := " "
				if r.Status == "active" {
					mark = "*"
				}
				cfg := strings.Join(append(append([]string{}, r.Config...), secretNames(r.Secrets)...), ",")
				if cfg == "" {
					cfg = "-"
				}
				status := r.Status
				if r.Pruned {
					status += " (pruned: no rollback)"
					pruned++
				}
				deploy := "-"
				if r.DeployID != 0 {
					deploy = fmt.Sprintf("#%d", r.DeployID)
					differ = differ || r.DeployID != int64(r.Version)
				}
				commit := r.Commit.Short()
				if commit == "" {
					commit = "-"
				}
				fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, r.ID, deploy, status, ago(r.CreatedAt), r.Cause, cfg, formationString(r.Formation), commit)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if pruned > 0 {
				fmt.Fprintf(g.stdout, "%d release(s) marked pruned: their artifact was removed by retention (deploy.keep_releases, counted in artifacts), so `moorage rollback --to` cannot go there\n", pruned)
			}
			if differ {
				fmt.Fprintln(g.stdout, "DEPLOY is the deploy that made the release: deploy numbers count every attempt, even one that failed before making a release; release numbers count releases, config changes and rollbacks included (see moorage deploys)")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func secretNames(s []string) []string {
	out := make([]string, len(s))
	for i, n := range s {
		out[i] = n + "(secret)"
	}
	return out
}

func formationString(f map[string]int) string {
	if len(f) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sortStrings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, f[k])
	}
	return strings.Join(parts, " ")
}

// ago renders a time as "3m ago".
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return t.Local().Format("2006-01-02 15:04")
}

// dur renders a duration compactly.
func dur(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
