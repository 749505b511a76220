package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

func newLogsCmd(g *globals) *cobra.Command {
	var o client.LogsOptions
	var full bool
	cmd := &cobra.Command{
		Use:   "logs [SERVICE]",
		Short: "Show an app's logs, all instances merged by time",
		Long: `Show an app's logs: every instance's lines merged by time, prefixed with the
instance. Logs outlive instances: lines of earlier releases stay readable across
deploys, rollbacks and server restarts until pruned.

Times are local: 15:04:05.000 for today's lines, with the date before it for
older ones; --timestamps prints full RFC 3339 times instead.`,
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
			lp := newLogPrinter(g, full)
			return c.Logs(cmd.Context(), app, o, lp.print)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines")
	f.IntVarP(&o.Tail, "lines", "n", 100, "how many recent lines (0: all)")
	f.StringVar(&o.Since, "since", "", "only lines newer than this (1h, 30m, or an RFC 3339 time)")
	f.StringVar(&o.Release, "release", "", "only lines of this release (v3)")
	f.BoolVar(&full, "timestamps", false, "print full RFC 3339 times (date, milliseconds, zone)")
	return cmd
}

var palette = []string{"36", "32", "33", "35", "34", "96", "92", "93", "95", "94"}

// logPrinter prints log lines: a time, the instance (coloured on a
// terminal) and the text.
type logPrinter struct {
	g     *globals
	color bool
	full  bool
	now   func() time.Time
}

func newLogPrinter(g *globals, full bool) *logPrinter {
	return &logPrinter{g: g, color: isTTY(g.stdout), full: full, now: time.Now}
}

func (p *logPrinter) print(l api.LogLine) {
	ts := logTime(l.Time, p.now(), p.full)
	if p.color {
		h := 0
		for _, c := range l.Instance {
			h = h*31 + int(c)
		}
		if h < 0 {
			h = -h
		}
		fmt.Fprintf(p.g.stdout, "%s \x1b[%sm%s\x1b[0m | %s\n", ts, palette[h%len(palette)], l.Instance, l.Text)
		return
	}
	fmt.Fprintf(p.g.stdout, "%s %s | %s\n", ts, l.Instance, l.Text)
}

// logTime formats a line's time in local time: compact for today's lines,
// with the date for older ones (logs outlive deploys: a day-old line must
// not pass for today's), or full RFC 3339.
func logTime(t, now time.Time, full bool) string {
	t = t.Local()
	if full {
		return t.Format("2006-01-02T15:04:05.000Z07:00")
	}
	now = now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05.000")
	}
	return t.Format("2006-01-02 15:04:05.000")
}

func isTTY(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
