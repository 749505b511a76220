package cli

import (
	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

func newStopStartCmds(g *globals) []*cobra.Command {
	mk := func(stop bool) *cobra.Command {
		var wait bool
		var o opFlags
		use, short, long := "start", "Start a stopped app again", `Start an app stopped with moorage stop: its active release runs again with
its formation, health-gated, and the maintenance page goes away.`
		if stop {
			use, short, long = "stop", "Stop an app's services; the proxy shows the maintenance page", `Stop every service instance of the app, gracefully (stop_signal, then
stop_timeout), and show the maintenance page to its visitors. The app keeps its
releases, formation, config, accessories and volumes; a server restart keeps it
stopped. Deploys, rollbacks, config changes and scale are refused until
moorage start. Refused while another operation (a deploy) holds the app's lock.`
		}
		cmd := &cobra.Command{
			Use:   use + " [APP]",
			Short: short,
			Long:  long,
			Args:  cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) == 1 {
					g.app = args[0]
				}
				app, err := g.appName()
				if err != nil {
					return err
				}
				c, err := g.client()
				if err != nil {
					return err
				}
				req := api.StopStartRequest{Wait: wait, DryRun: o.dryRun}
				return streamOp(cmd, g, o, use+" "+app, func(fn func(api.Event)) (client.Result, error) {
					if stop {
						return c.StopApp(cmd.Context(), app, req, fn)
					}
					return c.StartApp(cmd.Context(), app, req, fn)
				})
			},
		}
		cmd.Flags().BoolVar(&wait, "wait", false, "wait for an operation in progress instead of being refused")
		o.add(cmd)
		o.addDryRun(cmd)
		return cmd
	}
	return []*cobra.Command{mk(true), mk(false)}
}
