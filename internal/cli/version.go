package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/version"
)

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the client's and the server's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(g.stdout, "client: moorage %s\n", version.String())
			c, err := g.client()
			if err != nil {
				return err
			}
			// Over ssh, allow for the connection (and a passphrase prompt).
			timeout := 5 * time.Second
			if strings.HasPrefix(c.Addr(), "ssh://") {
				timeout = time.Minute
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			v, err := c.Version(ctx)
			if err != nil {
				fmt.Fprintf(g.stdout, "server: not reachable at %s\n", c.Addr())
				fmt.Fprintf(g.stderr, "%v\n", err)
				return nil
			}
			fmt.Fprintf(g.stdout, "server: moorage %s (schema %d, runtimes %v, data dir %s, http %s)\n", v.Version, v.Schema, v.Runtimes, v.DataDir, v.HTTP)
			return nil
		},
	}
}
