package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
)

func newPsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "Show an app's active release, its instances and recent trouble",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context(), app)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(st)
			}
			active := st.Active
			if active == "" {
				active = "none"
			}
			fmt.Fprintf(g.stdout, "%s: %s active (%s, %s) on %s\n", st.App, active, st.Cause, ago(st.Since), st.Runtime)
			switch m := st.Maintenance; {
			case m != nil && m.Destroying:
				fmt.Fprintf(g.stdout, "BEING DESTROYED: a destroy was interrupted; `moorage apps destroy %s --yes` finishes it\n", st.App)
			case m != nil && m.Stopped:
				fmt.Fprintf(g.stdout, "STOPPED (moorage stop): visitors get a 503 page (%q); `moorage start -a %s` starts it\n", m.Message, st.App)
			case m != nil:
				fmt.Fprintf(g.stdout, "MAINTENANCE MODE: visitors get a 503 page (%q); `moorage maintenance off` ends it\n", m.Message)
			}
			for _, a := range st.StoppedAccessories {
				fmt.Fprintf(g.stdout, "accessory %s: stopped (moorage accessory stop); `moorage accessory start -a %s %s` starts it\n", a, st.App, a)
			}
			if st.Lock != nil {
				fmt.Fprintf(g.stdout, "locked: %s by %s since %s\n", st.Lock.Operation, st.Lock.Owner, ago(st.Lock.AcquiredAt))
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			// A cluster runtime (swarm) says which node runs each instance.
			nodes := false
			for _, in := range st.Instances {
				nodes = nodes || in.Node != ""
			}
			header := "INSTANCE\tKIND\tRELEASE\tSTATE\tHEALTH\tRESTARTS\tUP\tADDRESS"
			if nodes {
				header += "\tNODE"
			}
			fmt.Fprintln(tw, header)
			for _, in := range st.Instances {
				rel, health, addr := in.Release, in.Health, in.Addr
				if rel == "" {
					rel = "-"
				}
				if health == "" {
					health = "-"
				}
				if in.Routed {
					health += " (routed)"
				}
				if !in.WarmUntil.IsZero() {
					health = "warm until " + in.WarmUntil.Local().Format("15:04:05")
				}
				if addr == "" {
					addr = "-"
				}
				up := "-"
				if in.State == api.InstanceRunning && !in.StartedAt.IsZero() {
					up = dur(time.Since(in.StartedAt).Round(time.Second))
				}
				state := string(in.State)
				if in.Paused {
					state = "PAUSED"
				}
				if in.Unreachable {
					state += " (node down)"
				}
				line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", in.ID, in.Kind, rel, state, health, strconv.Itoa(in.Restarts), up, addr)
				if nodes {
					node := in.Node
					if node == "" {
						node = "-"
					}
					line += "\t" + node
				}
				fmt.Fprintln(tw, line)
			}
			tw.Flush()
			if len(st.Backups) > 0 {
				fmt.Fprintln(g.stdout, "\nbackups:")
				for _, b := range st.Backups {
					line := fmt.Sprintf("  %-8s %-12s %s %s (%s)", b.Kind, b.Target, b.Status, ago(b.Time), b.Trigger)
					if b.Status == "failed" {
						line = fmt.Sprintf("  %-8s %-12s FAILED %s (%s): %s", b.Kind, b.Target, ago(b.Time), b.Trigger, b.Error)
					}
					fmt.Fprintln(g.stdout, line)
				}
			}
			printFailingNotifiers(cmd, g, c, app)
			if len(st.Events) > 0 {
				fmt.Fprintln(g.stdout, "\nrecent events:")
				for _, e := range st.Events {
					fmt.Fprintf(g.stdout, "  %s  %-8s %s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Kind, e.Message)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
