package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

func newScaleCmd(g *globals) *cobra.Command {
	var wait bool
	var o opFlags
	cmd := &cobra.Command{
		Use:   "scale SERVICE=N...",
		Short: "Change how many instances of services run, at once",
		Long: `Change how many instances of services run. New instances start health-gated
and join the routes; extra ones are drained and stopped gracefully. No release
is created; the counts stay for later deploys and rollbacks. A singleton runs 0
or 1 instance.`,
		Example: "  moorage scale web=3 worker=2",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := g.appName()
			if err != nil {
				return err
			}
			req := api.ScaleRequest{Replicas: map[string]int{}, Wait: wait, DryRun: o.dryRun}
			for _, a := range args {
				k, v, ok := strings.Cut(a, "=")
				n, err := strconv.Atoi(v)
				if !ok || k == "" || err != nil || n < 0 {
					return fmt.Errorf("%q: give SERVICE=N with N a whole number ≥ 0, e.g. web=3", a)
				}
				req.Replicas[k] = n
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			return streamOp(cmd, g, o, "scale "+strings.Join(args, " "), func(fn func(api.Event)) (client.Result, error) {
				return c.Scale(cmd.Context(), app, req, fn)
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for an operation in progress instead of being refused")
	o.add(cmd)
	o.addDryRun(cmd)
	return cmd
}
