package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newCertsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "List the server's certificates: names, issuer, expiry, last renewal and last error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			list, err := c.Certs(cmd.Context(), g.app)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(list)
			}
			if len(list) == 0 {
				if v, err := c.Version(cmd.Context()); err == nil && v.HTTPS == "" {
					fmt.Fprintln(g.stdout, "no certificates: HTTPS is off on this server (it was started with --https off); restart it with --https :443 (or another address) to serve HTTPS")
					return nil
				}
				fmt.Fprintln(g.stdout, "no certificates: no route has tls: auto, internal or {cert, key}")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "APP\tMODE\tNAMES\tSTATUS\tISSUER\tEXPIRES\tLAST RENEWAL\tLAST ERROR")
			for _, ci := range list {
				exp := "-"
				if !ci.NotAfter.IsZero() {
					exp = ci.NotAfter.Local().Format("2006-01-02 15:04") + " (in " + until(ci.NotAfter) + ")"
				}
				last, lerr := "-", "-"
				if !ci.LastRenewal.IsZero() {
					last = ago(ci.LastRenewal)
				}
				if ci.LastError != "" {
					lerr = firstLine(ci.LastError)
					if !ci.NextAttempt.IsZero() {
						lerr += " (retry in " + until(ci.NextAttempt) + ")"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ci.App, ci.Mode, strings.Join(ci.Names, ","), ci.Status, orDefault(ci.Issuer, "-"), exp, last, lerr)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(&cobra.Command{
		Use:   "renew NAME",
		Short: "Renew a managed certificate now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.RenewCert(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "renewed the certificate of %s\n", args[0])
			return nil
		},
	})
	return cmd
}

func until(t time.Time) string {
	d := time.Until(t)
	switch {
	case d < 0:
		return "expired"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
