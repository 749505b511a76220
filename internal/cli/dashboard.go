package cli

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

func newDashboardCmd(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "dashboard [--listen 127.0.0.1:8470]",
		Short: "Open the web dashboard through the CLI's connection (ssh or the socket), on a loopback port",
		Long: "Serves the server's web dashboard on a loopback address of this machine, forwarded through the\n" +
			"connection every command uses (--host ssh://... or the local socket): no port is opened on the server.\n" +
			"Only the dashboard's pages are forwarded, never the rest of the control API. Open the printed address\n" +
			"and log in as a user made with `moorage dashboard user add`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return fmt.Errorf("--listen %q: use host:port, e.g. 127.0.0.1:8470", listen)
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return fmt.Errorf("--listen %q: the forwarded dashboard is only served on a loopback address (127.0.0.1, ::1 or localhost)", listen)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if _, err := c.Version(cmd.Context()); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w (pick another port)", listen, err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			srv := &http.Server{Handler: loopbackHostOnly(host, port, c.DashboardProxy()), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(g.stdout, "dashboard of %s: http://localhost:%d%s (Ctrl-C stops it)\n", c.Addr(), port, client.DashboardPrefix)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() { <-ctx.Done(); srv.Close() }()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8470", "loopback address to serve the dashboard on (port 0: any free port)")
	cmd.AddCommand(newDashboardUserCmd(g))
	return cmd
}

// loopbackHostOnly answers 421 to a request whose Host is not this
// forwarder's own address: localhost, 127.0.0.1, [::1] or the --listen host,
// with the port listened on. A web page on another site cannot use DNS
// rebinding (its own name resolving to 127.0.0.1) to reach the dashboard
// through the forwarder as if from the same origin.
func loopbackHostOnly(listenHost string, port int, h http.Handler) http.Handler {
	p := strconv.Itoa(port)
	ok := map[string]bool{}
	for _, host := range []string{"localhost", "127.0.0.1", "[::1]", strings.ToLower(listenHost)} {
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			host = "[" + host + "]" // an IPv6 --listen host
		}
		ok[host+":"+p] = true
		if port == 80 {
			ok[host] = true // browsers leave out the default port
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ok[strings.ToLower(r.Host)] {
			http.Error(w, "this forwarder serves only http://localhost:"+p+" (Host "+strconv.Quote(r.Host)+" refused)", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func newDashboardUserCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage the dashboard's users"}
	var role string
	add := &cobra.Command{
		Use:   "add NAME --role operator|readonly",
		Short: "Create a user, or set an existing one's role and password (read from the terminal or standard input)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role != api.RoleOperator && role != api.RoleReadonly {
				return fmt.Errorf("--role %q: use operator (may act) or readonly (may only look)", role)
			}
			pw, err := readNewPassword(g, args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.PutDashboardUser(cmd.Context(), api.DashboardUserRequest{Name: args[0], Role: role, Password: pw}); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "dashboard user %s (%s) saved\n", args[0], role)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "", "operator (may roll back, scale, ...) or readonly (may only look)")
	list := &cobra.Command{
		Use: "list", Short: "List the dashboard's users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			us, err := c.DashboardUsers(cmd.Context())
			if err != nil {
				return err
			}
			for _, u := range us {
				fmt.Fprintf(g.stdout, "%s\t%s\t%s\n", u.Name, u.Role, u.CreatedAt.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	rm := &cobra.Command{
		Use: "remove NAME", Aliases: []string{"rm"}, Short: "Remove a dashboard user (its sessions end at its next request)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteDashboardUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "dashboard user %s removed\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, rm)
	return cmd
}

// readNewPassword asks twice on a terminal; otherwise it reads the first
// line of standard input.
func readNewPassword(g *globals, name string) (string, error) {
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		fmt.Fprintf(g.stderr, "password for %s: ", name)
		a, err := term.ReadPassword(fd)
		fmt.Fprintln(g.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(g.stderr, "again: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(g.stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password on standard input: pipe one in (echo \"$PW\" | moorage dashboard user add NAME --role ...) or run it in a terminal")
	}
	return strings.TrimRight(line, "\r\n"), nil
}
