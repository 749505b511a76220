package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

func newNotifyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Send deploy outcomes, failed backups and certificate failures to webhooks, Slack or email",
		Long: `Notifiers tell people what happened: deploy success and failure, automatic
rollbacks, failed scheduled backups and certificate failures. A notifier
belongs to one app (-a APP) or to the whole server (--server). Its URL and
credentials are stored encrypted. Deliveries are retried with backoff and
never delay or fail a deploy; a notifier whose last delivery failed shows in
'moorage ps'.`,
	}
	cmd.AddCommand(newNotifyAddCmd(g), newNotifyLsCmd(g), newNotifyRmCmd(g), newNotifyTestCmd(g))
	return cmd
}

func newNotifyAddCmd(g *globals) *cobra.Command {
	var t api.NotifierTarget
	var server, passwordStdin bool
	cmd := &cobra.Command{
		Use:   "add webhook|slack|email [URL]",
		Short: "Add a notifier",
		Example: `  moorage notify add -a shop webhook https://ci.example.com/moorage --secret "$HOOK_KEY"
  moorage notify add --server slack https://hooks.slack.com/services/T000/B000/XXXX
  moorage notify add -a shop email --smtp smtp.example.com:587 --from moorage@example.com \
      --to ops@example.com --user moorage --password-stdin < smtp-password`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t.Kind = args[0]
			if len(args) == 2 {
				t.URL = args[1]
			}
			if passwordStdin {
				line, err := bufio.NewReader(os.Stdin).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("--password-stdin: %w", err)
				}
				t.Password = strings.TrimRight(line, "\r\n")
			}
			app := ""
			if !server {
				a, err := g.appName()
				if err != nil {
					return fmt.Errorf("%w (or --server for every app)", err)
				}
				app = a
			}
			if err := t.Validate(); err != nil {
				return &exitError{code: 2, err: err}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			n, err := c.AddNotifier(cmd.Context(), app, t)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "notifier %d: %s, for %s; try it with `moorage notify test %d`\n", n.ID, n.Label, scopeOf(n.App), n.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&server, "server", false, "notify about every app of the server")
	f.StringVar(&t.Secret, "secret", "", "webhook: the key that signs each body (X-Moorage-Signature-256)")
	f.StringVar(&t.SMTP, "smtp", "", "email: the SMTP server, HOST[:PORT] (port 587 by default)")
	f.StringVar(&t.From, "from", "", "email: the sender address")
	f.StringArrayVar(&t.To, "to", nil, "email: a recipient (repeat for more)")
	f.StringVar(&t.Username, "user", "", "email: SMTP user (PLAIN auth, over STARTTLS)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "email: read the SMTP password from stdin")
	f.StringVar(&t.CAFile, "ca-file", "", "email: PEM file on the server of roots to trust for the SMTP server's certificate")
	f.BoolVar(&t.Insecure, "insecure", false, "email: send without STARTTLS when the server offers none (a relay on localhost)")
	return cmd
}

func scopeOf(app string) string {
	if app == "" {
		return "every app"
	}
	return app
}

func newNotifyLsCmd(g *globals) *cobra.Command {
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the notifiers of an app (and the server-wide ones), or --all",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app := ""
			if !all {
				a, err := g.appName()
				if err != nil {
					return fmt.Errorf("%w (or --all)", err)
				}
				app = a
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ns, err := c.Notifiers(cmd.Context(), app)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(ns)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tFOR\tTO\tLAST DELIVERY")
			for _, n := range ns {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", n.ID, scopeOf(n.App), n.Label, deliveryOf(n))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&all, "all", false, "every notifier of the server")
	return cmd
}

func deliveryOf(n api.Notifier) string {
	switch {
	case n.Failing:
		return fmt.Sprintf("FAILING (%d in a row, %s): %s", n.Failures, ago(n.LastErrorAt), n.LastError)
	case !n.LastOK.IsZero():
		return "ok " + ago(n.LastOK)
	}
	return "none yet"
}

func notifierArg(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, &exitError{code: 2, err: fmt.Errorf("notifier id %q: use the number `moorage notify ls` shows", s)}
	}
	return id, nil
}

func newNotifyRmCmd(g *globals) *cobra.Command {
	return notifierCmd(g, "rm ID", "Remove a notifier", "notifier %d removed",
		func(ctx context.Context, c *client.Client, id int64) error { return c.RemoveNotifier(ctx, id) })
}

func newNotifyTestCmd(g *globals) *cobra.Command {
	return notifierCmd(g, "test ID", "Send a test notification now and say whether it arrived",
		"notifier %d: test notification delivered",
		func(ctx context.Context, c *client.Client, id int64) error { return c.TestNotifier(ctx, id) })
}

// notifierCmd is a command on one notifier, by the id `notify ls` shows.
func notifierCmd(g *globals, use, short, done string, do func(context.Context, *client.Client, int64) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := notifierArg(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := do(cmd.Context(), c, id); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, done+"\n", id)
			return nil
		},
	}
}

// printFailingNotifiers is `moorage ps`'s notifications section: the
// app's notifiers whose last delivery failed.
func printFailingNotifiers(cmd *cobra.Command, g *globals, c interface {
	Notifiers(ctx context.Context, app string) ([]api.Notifier, error)
}, app string) {
	ns, err := c.Notifiers(cmd.Context(), app)
	if err != nil {
		return // an older server: no notifiers
	}
	first := true
	for _, n := range ns {
		if !n.Failing {
			continue
		}
		if first {
			fmt.Fprintln(g.stdout, "\nnotifications:")
			first = false
		}
		fmt.Fprintf(g.stdout, "  notifier %d (%s) %s\n", n.ID, n.Label, deliveryOf(n))
	}
}
