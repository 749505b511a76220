package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
)

func newMaintenanceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "maintenance on|off",
		Short: "Serve a 503 maintenance page instead of the app (health checks still reach it)",
	}
	var m api.Maintenance
	var htmlFile string
	on := &cobra.Command{
		Use:   "on [--message TEXT] [--html FILE]",
		Short: "Turn maintenance mode on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := g.appName()
			if err != nil {
				return err
			}
			if htmlFile != "" {
				b, err := os.ReadFile(htmlFile)
				if err != nil {
					return err
				}
				m.HTML = string(b)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.SetMaintenance(cmd.Context(), app, &m); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s is in maintenance mode: visitors get a 503 page; `moorage maintenance off` ends it\n", app)
			return nil
		},
	}
	on.Flags().StringVar(&m.Message, "message", "", "text of the maintenance page")
	on.Flags().StringVar(&htmlFile, "html", "", "a file with a whole custom HTML page")
	off := &cobra.Command{
		Use:   "off",
		Short: "Turn maintenance mode off",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			if err := c.SetMaintenance(cmd.Context(), app, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s serves again\n", app)
			return nil
		},
	}
	cmd.AddCommand(on, off)
	return cmd
}
