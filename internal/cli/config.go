package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
	"github.com/moorage/moorage/internal/spec"
)

func newConfigCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "List an app's config values (secrets masked); set and unset them",
		Long: `List, set and unset an app's config values. Each change creates a new release
of the active code with the new config and rolls it out through the normal
health-gated cutover (use --no-deploy to only stage it for the next deploy).
A change is recorded once its release is active: if the rollout fails, the
config stays as it was.

Secrets (--secret) are encrypted at rest on the server and never shown again:
not by this command, not in deploy output, logs or API answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			vars, err := c.Config(cmd.Context(), app)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(vars)
			}
			if len(vars) == 0 {
				fmt.Fprintf(g.stdout, "%s has no config values; set some with `moorage config set KEY=VALUE`\n", app)
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			for _, v := range vars {
				val := v.Value
				if v.Secret {
					val = "•••••• (secret)"
				}
				fmt.Fprintf(tw, "%s\t%s\n", v.Key, val)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(newConfigSetCmd(g), newConfigUnsetCmd(g))
	return cmd
}

func newConfigSetCmd(g *globals) *cobra.Command {
	var secret, noDeploy, wait bool
	var o opFlags
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE... | set --secret KEY[=VALUE]...",
		Short: "Set config values and roll them out",
		Long: `Set config values and roll them out as a new release.

With --secret the values are secrets. A secret given as KEY alone is read from
standard input (one value; a trailing newline is dropped), or asked for without
echo on a terminal, so it never lands in your shell history:

    moorage config set --secret SECRET_KEY < secret.txt`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := g.appName()
			if err != nil {
				return err
			}
			req := api.ConfigRequest{NoDeploy: noDeploy, Wait: wait, DryRun: o.dryRun}
			vals := map[string]string{}
			stdinUsed := false
			for i, a := range args {
				// Errors name the argument by position: it may hold a
				// value, which is never echoed.
				k, v, ok := strings.Cut(a, "=")
				if k == "" {
					return fmt.Errorf("argument %d has nothing before '=': give KEY=VALUE", i+1)
				}
				if spec.CheckEnvKey(k) != nil {
					return fmt.Errorf("argument %d does not start with a variable name (letters, digits and '_', not starting with a digit; not shown in case it is a value): give KEY=VALUE", i+1)
				}
				if !ok {
					if !secret {
						return fmt.Errorf("argument %d has no '=': give KEY=VALUE (or use --secret to read the value from standard input)", i+1)
					}
					if stdinUsed {
						return fmt.Errorf("only one secret can be read from standard input; give the others as KEY=VALUE")
					}
					stdinUsed = true
					if v, err = readSecret(g, k); err != nil {
						return err
					}
				}
				vals[k] = v
			}
			if secret {
				req.Secrets = vals
			} else {
				req.Set = vals
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			keys := make([]string, 0, len(vals))
			for k := range vals {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return streamOp(cmd, g, o, "config set "+strings.Join(keys, " "), func(fn func(api.Event)) (client.Result, error) {
				return c.ChangeConfig(cmd.Context(), app, req, fn)
			})
		},
	}
	cmd.Flags().BoolVar(&secret, "secret", false, "the values are secrets: encrypted at rest, never shown")
	cmd.Flags().BoolVar(&noDeploy, "no-deploy", false, "only stage the change; the next deploy uses it")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for an operation in progress instead of being refused")
	o.add(cmd)
	o.addDryRun(cmd)
	return cmd
}

// readSecret reads one secret value from standard input.
func readSecret(g *globals, key string) (string, error) {
	if term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprintf(g.stderr, "%s: ", key)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(g.stderr)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read %s from standard input: %w", key, err)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return "", fmt.Errorf("read %s from standard input: it is empty", key)
	}
	return v, nil
}

func newConfigUnsetCmd(g *globals) *cobra.Command {
	var noDeploy, wait bool
	var o opFlags
	cmd := &cobra.Command{
		Use:   "unset KEY...",
		Short: "Remove config values and roll the change out",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, err := g.appClient()
			if err != nil {
				return err
			}
			req := api.ConfigRequest{Unset: args, NoDeploy: noDeploy, Wait: wait, DryRun: o.dryRun}
			return streamOp(cmd, g, o, "config unset "+strings.Join(args, " "), func(fn func(api.Event)) (client.Result, error) {
				return c.ChangeConfig(cmd.Context(), app, req, fn)
			})
		},
	}
	cmd.Flags().BoolVar(&noDeploy, "no-deploy", false, "only stage the change; the next deploy uses it")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for an operation in progress instead of being refused")
	o.add(cmd)
	o.addDryRun(cmd)
	return cmd
}
