package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

func newAppsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "List the server's apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			apps, err := c.Apps(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(apps)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "APP\tRUNTIME\tACTIVE")
			for _, a := range apps {
				active := a.Active
				if active == "" {
					active = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, a.Runtime, active)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(newAppsDestroyCmd(g))
	return cmd
}

func newAppsDestroyCmd(g *globals) *cobra.Command {
	var req api.DestroyRequest
	var o opFlags
	cmd := &cobra.Command{
		Use:   "destroy APP --yes",
		Short: "Stop and remove an app: instances, accessories, artifacts, routes, certificates, records",
		Long: `Destroy an app: the proxy stops serving its hosts (they are answered as unknown
hosts) and their certificates are deleted, every service instance and accessory
stops and is removed, its artifacts (release directories, images) are deleted,
and its releases, deploys, config and secrets and events are forgotten. The
audit keeps the entry of the destroy. Afterwards 'moorage apps' no longer lists
the app, and a deploy of the same name starts from scratch.

Volumes and backups are kept, and the output says where: a new deploy of the
same name finds them again. With --volumes they are deleted too, each named.

Without --yes it prints what it would remove and refuses. Refused while
another operation (a deploy) holds the app's lock (--wait waits for it). A
destroy that was interrupted (a crash) leaves the app stopped and refusing
every other operation: run it again to finish.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := args[0]
			c, err := g.client()
			if err != nil {
				return err
			}
			req.DryRun = o.dryRun
			if !req.Yes {
				o.dryRun = true // print the plan of what it would remove
			}
			return streamOp(cmd, g, o, "destroy of "+app, func(fn func(api.Event)) (client.Result, error) {
				return c.Destroy(cmd.Context(), app, req, fn)
			})
		},
	}
	cmd.Flags().BoolVar(&req.Yes, "yes", false, "confirm: destroy the app")
	cmd.Flags().BoolVar(&req.Volumes, "volumes", false, "also delete the app's volumes and backups (kept by default)")
	cmd.Flags().BoolVar(&req.Wait, "wait", false, "wait for an operation in progress instead of being refused")
	o.add(cmd)
	o.addDryRun(cmd)
	return cmd
}
