package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func newPruneCmd(g *globals) *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove old release directories or images and old logs, and say what was freed",
		Long: `Remove what the app no longer needs: the artifacts (release directories,
images) of releases beyond deploy.keep_releases, and logs beyond the app's
retention (logs: max_age, max_size). The active release and the releases a
rollback may need are never removed. Deploys prune artifacts too; the server
applies log retention hourly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			rep, err := c.Prune(cmd.Context(), app, dryRun)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(rep)
			}
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			var total int64
			for _, a := range rep.Artifacts {
				sz := ""
				if a.Bytes > 0 {
					sz = " (" + size(a.Bytes) + ")"
					total += a.Bytes
				}
				fmt.Fprintf(g.stdout, "%s %s: %s%s\n", verb, a.Release, a.Ref, sz)
			}
			if len(rep.Artifacts) == 0 {
				fmt.Fprintln(g.stdout, "no release beyond the retention window")
			}
			if !dryRun {
				fmt.Fprintf(g.stdout, "logs: freed %s\n", size(rep.LogBytes))
				total += rep.LogBytes
			}
			fmt.Fprintf(g.stdout, "%s %s in all\n", map[bool]string{true: "would free", false: "freed"}[dryRun], size(total))
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only say what would be removed")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
