package cli

import (
	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

func newAccessoryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "accessory",
		Short: "Manage accessories (databases, caches)",
		Long: `Accessories are long-lived dependencies an app's deploys never restart unless
their own spec changed. 'moorage ps' lists them with the app's instances.`,
	}
	type def struct{ action, use, short, long string }
	for _, d := range []def{
		{"restart", "restart NAME", "Stop an accessory and start it again with the active release's spec of it", ""},
		{"stop", "stop NAME", "Stop an accessory; it stays stopped across deploys and server restarts", `Stop an accessory and remove its instance (its volumes keep their data). It
stays stopped across server restarts, deploys and rollbacks until 'moorage
accessory start': a deploy says "stay stopped" for it in its plan and warns,
and does not start it (services that need it may then fail their health
checks). Refused while another operation (a deploy) holds the app's lock.`},
		{"start", "start NAME", "Start a stopped accessory again with the active release's spec of it", ""},
		{"remove", "remove NAME [--volumes]", "Remove an accessory the active release no longer declares", `Remove an accessory that the active release no longer declares: remove it from
moorage.yaml and deploy first (deploys never remove an accessory on their own;
'moorage accessory stop' stops one that is still declared). Its volumes are kept
unless --volumes, which deletes those no service of the active release mounts.`},
	} {
		var req api.AccessoryRequest
		var o opFlags
		sub := &cobra.Command{
			Use:   d.use,
			Short: d.short,
			Long:  d.long,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				app, c, err := g.appClient()
				if err != nil {
					return err
				}
				req.DryRun = o.dryRun
				return streamOp(cmd, g, o, d.action+" of accessory "+args[0], func(fn func(api.Event)) (client.Result, error) {
					return c.AccessoryOp(cmd.Context(), app, args[0], d.action, req, fn)
				})
			},
		}
		sub.Flags().BoolVar(&req.Wait, "wait", false, "wait for an operation in progress instead of being refused")
		if d.action == "remove" {
			sub.Flags().BoolVar(&req.Volumes, "volumes", false, "also delete the accessory's volumes (kept by default)")
		}
		o.add(sub)
		o.addDryRun(sub)
		cmd.AddCommand(sub)
	}
	return cmd
}
