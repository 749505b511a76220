package cli

import (
	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/client"
	"github.com/moorage/moorage/internal/engine"
)

func newAccessoryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "accessory",
		Short: "Manage accessories (databases, caches)",
		Long: `Accessories are long-lived dependencies an app's deploys never restart unless
their own spec changed. 'moorage ps' lists them with the app's instances.`,
	}
	var wait bool
	var o opFlags
	restart := &cobra.Command{
		Use:   "restart NAME",
		Short: "Stop an accessory and start it again with the active release's spec of it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			return streamOp(cmd, g, o, "restart of accessory "+args[0], func(fn func(engine.Event)) (client.Result, error) {
				return c.RestartAccessory(cmd.Context(), app, args[0], wait, fn)
			})
		},
	}
	restart.Flags().BoolVar(&wait, "wait", false, "wait for an operation in progress instead of being refused")
	o.add(restart)
	cmd.AddCommand(restart)
	return cmd
}
