package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

func newCheckCmd(g *globals) *cobra.Command {
	var o client.DeployOptions
	var asJSON, verbose bool
	cmd := &cobra.Command{
		Use:   "check [DIR]",
		Short: "Preflight: what a deploy of DIR would meet, without changing anything",
		Long: `Upload DIR like 'moorage deploy' and report, without changing what runs:
the spec's validity, the plan a deploy would run, security problems (services
as root, secrets declared but not set, routed services without a health check,
public hosts without TLS, writable root filesystems), and the spec's checks:
run in a build that is never started and removed afterwards.

Each finding is pass, warn or fail with its fix in one line. The exit status
is 1 when any finding fails, 2 when the spec is invalid.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			var rep *api.CheckReport
			if _, err := loadSpec(dir, o.Runtime); err != nil {
				// Say what is wrong locally; the server would say the same.
				rep = &api.CheckReport{Results: []api.CheckResult{api.SpecCheck(filepath.Join(dir, "moorage.yaml"), err)}}
				if app, aerr := appFromSpec(dir); aerr == nil {
					rep.App = app
				}
			} else {
				c, err := g.client()
				if err != nil {
					return err
				}
				if rep, err = c.Check(cmd.Context(), dir, o); err != nil {
					return err
				}
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				enc.Encode(rep)
			} else {
				printReport(g, rep, verbose)
			}
			if rep.Failed() {
				if len(rep.Results) > 0 && rep.Results[0].Name == "spec" && rep.Results[0].Status == api.CheckFail {
					return &exitError{code: 2}
				}
				return &exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Runtime, "runtime", "", "check for this runtime instead of the spec's: docker, swarm, kubernetes or process")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVarP(&verbose, "verbose", "v", false, "also print the output of checks that passed")
	return cmd
}

func printReport(g *globals, rep *api.CheckReport, verbose bool) {
	w := g.stdout
	if rep.App != "" {
		fmt.Fprintf(w, "check %s (%s)\n", rep.App, orDash(rep.Runtime))
	}
	switch {
	case rep.Plan != "":
		fmt.Fprintln(w, "plan:")
		fmt.Fprintln(w, indent(rep.Plan, "  "))
	case rep.PlanNote != "":
		fmt.Fprintf(w, "plan: %s\n", rep.PlanNote)
	}
	for _, x := range rep.Results {
		secs := ""
		if x.Seconds >= 0.05 {
			secs = fmt.Sprintf(" (%.1fs)", x.Seconds)
		}
		fmt.Fprintf(w, "%-4s  %s: %s%s\n", strings.ToUpper(x.Status), x.Name, x.Message, secs)
		if x.Output != "" && (x.Status != api.CheckPass || verbose) {
			out := strings.TrimRight(x.Output, "\n")
			if lines := strings.Split(out, "\n"); len(lines) > 40 {
				out = strings.Join(lines[len(lines)-40:], "\n")
			}
			fmt.Fprintln(w, indent(out, "      | "))
		}
		if x.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", x.Fix)
		}
	}
	pass, warn, fail := rep.Count()
	fmt.Fprintf(w, "%d passed, %d warning(s), %d failed\n", pass, warn, fail)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
