package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moorage/moorage/internal/api"
)

func newRegistryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Log the server in to container registries (the swarm runtime's --swarm-registry)",
		Long: `A server started with --swarm-registry HOST[:PORT][/NS] pushes each release's
image there, and the swarm's nodes pull it. When that registry asks for a
login, give it once with 'moorage registry login': the server keeps the
password encrypted with its secrets key (as it keeps config secrets), pushes
with it, and hands it to Swarm with each service so that the nodes can pull.
A login is used only for its own host: the registry of the image pushed or
pulled. Nothing moorage prints, logs or records shows the password.

Where it is visible is in docs/operations.md (Registry logins).`,
	}
	cmd.AddCommand(newRegistryLoginCmd(g), newRegistryLogoutCmd(g), newRegistryLsCmd(g))
	return cmd
}

func newRegistryLoginCmd(g *globals) *cobra.Command {
	var req api.RegistryLoginRequest
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [HOST[:PORT]]",
		Short: "Store a registry's user and password, encrypted, on the server",
		Long: `Store a registry's user name and password on the server, the password
encrypted with the server's secrets key. HOST defaults to the host of the
server's --swarm-registry. A second login for the same host replaces the
first. The password is read from standard input with --password-stdin, else
asked for at the terminal; it is never taken from the command line.`,
		Example: `  moorage registry login -u deploy --password-stdin < registry-password
  printf '%s\n' "$REGISTRY_PASSWORD" | moorage registry login registry.example.com -u deploy --password-stdin
  moorage registry login 10.0.0.1:5000 -u deploy      # asks for the password`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				req.Host = args[0]
			}
			pw, err := readRegistryPassword(g, passwordStdin)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			req.Password = pw
			if err := req.Validate(); err != nil {
				return &exitError{code: 2, err: err}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			l, err := c.RegistryLogin(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "logged in to %s as %s (password stored encrypted on the server)\n", l.Host, l.Username)
			if !l.Used {
				fmt.Fprintf(g.stdout, "note: %s is not this server's --swarm-registry; on the swarm runtime its login is used for the images named on %s (accessories, image: deploys)\n", l.Host, l.Host)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&req.Username, "username", "u", "", "the registry user")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password (or token) from standard input, up to the first newline")
	return cmd
}

// readRegistryPassword reads the password from standard input
// (--password-stdin), or asks for it at the terminal without echo.
func readRegistryPassword(g *globals, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(os.Stdin, 64<<10)).ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("--password-stdin: nothing on standard input: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", fmt.Errorf("--password-stdin: the password on standard input is empty")
		}
		return pw, nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", fmt.Errorf("give the password on standard input with --password-stdin (it is never taken from the command line)")
	}
	fmt.Fprint(g.stderr, "Password: ")
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func newRegistryLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [HOST[:PORT]]",
		Short: "Forget a registry's login (default: the --swarm-registry's)",
		Long: `Forget a registry's login. Later pushes to it are anonymous, and services
created from then on carry no login; services that run already keep the one
Swarm holds for them until they are replaced by a deploy.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := ""
			if len(args) == 1 {
				h, err := api.RegistryHost(args[0])
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				host = h
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.RegistryLogout(cmd.Context(), host); err != nil {
				return err
			}
			if host == "" {
				host = "the server's registry"
			}
			fmt.Fprintf(g.stdout, "logged out of %s\n", host)
			return nil
		},
	}
}

func newRegistryLsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the registry logins (host and user; never the password)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ls, err := c.RegistryLogins(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(ls)
			}
			if ls.Registry != "" {
				fmt.Fprintf(g.stdout, "release images go to %s\n", ls.Registry)
			}
			if len(ls.Logins) == 0 {
				fmt.Fprintln(g.stdout, "no registry logins; add one with `moorage registry login [HOST] -u USER --password-stdin`")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "HOST\tUSER\tSINCE\tUSED FOR")
			for _, l := range ls.Logins {
				use := "images on this host"
				if l.Used {
					use = "release images (--swarm-registry)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Host, l.Username, ago(l.Created), use)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
