package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moorage/moorage/internal/client"
	"github.com/moorage/moorage/internal/runtime"
)

func newLogsCmd(g *globals) *cobra.Command {
	var o client.LogsOptions
	cmd := &cobra.Command{
		Use:   "logs [SERVICE]",
		Short: "Show an app's logs, all instances merged by time",
		Long: `Show an app's logs: every instance's lines merged by time, prefixed with the
instance. Logs outlive instances: lines of earlier releases stay readable across
deploys, rollbacks and server restarts until pruned.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := g.appName()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				o.Service = args[0]
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			color := isTTY(g.stdout)
			return c.Logs(cmd.Context(), app, o, func(l runtime.LogLine) {
				printLogLine(g, l, color)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines")
	f.IntVarP(&o.Tail, "lines", "n", 100, "how many recent lines (0: all)")
	f.StringVar(&o.Since, "since", "", "only lines newer than this (1h, 30m, or an RFC 3339 time)")
	f.StringVar(&o.Release, "release", "", "only lines of this release (v3)")
	return cmd
}

var palette = []string{"36", "32", "33", "35", "34", "96", "92", "93", "95", "94"}

func printLogLine(g *globals, l runtime.LogLine, color bool) {
	ts := l.Time.Local().Format("15:04:05.000")
	if color {
		h := 0
		for _, c := range l.Instance {
			h = h*31 + int(c)
		}
		if h < 0 {
			h = -h
		}
		fmt.Fprintf(g.stdout, "%s \x1b[%sm%s\x1b[0m | %s\n", ts, palette[h%len(palette)], l.Instance, l.Text)
		return
	}
	fmt.Fprintf(g.stdout, "%s %s | %s\n", ts, l.Instance, l.Text)
}

func isTTY(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
