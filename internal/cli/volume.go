package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newVolumeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Manage volumes (deploys never remove one)",
	}
	var yes bool
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a volume and ALL its data",
		Long: `Delete a volume and all its data. Deploys, rollbacks and prunes never remove a
volume; this is the only way. It is refused while the active release mounts
the volume: remove it from moorage.yaml and deploy first. Take a backup before.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			if !yes {
				return fmt.Errorf("this deletes volume %s of %s and all its data; run again with --yes to do it", args[0], app)
			}
			if err := c.RemoveVolume(cmd.Context(), app, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed volume %s of %s\n", args[0], app)
			return nil
		},
	}
	rm.Flags().BoolVar(&yes, "yes", false, "really delete the volume and its data")
	cmd.AddCommand(rm)
	return cmd
}
