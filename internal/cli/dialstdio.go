package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/client"
	"github.com/moorage/moorage/internal/paths"
)

// newDialStdioCmd is what an ssh:// client runs on the server's host: the
// client's HTTP flows through ssh into this command and on to the socket.
func newDialStdioCmd(g *globals) *cobra.Command {
	var sock string
	cmd := &cobra.Command{
		Use:   "dial-stdio",
		Short: "Connect standard input and output to the server's control socket (run by ssh:// clients)",
		Long: `Connect standard input and output to the server's control socket. A client
with --host ssh://host runs it on that host through ssh; people need not.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if sock == "" {
				sock = paths.Socket(paths.DefaultDataDir())
			}
			return dialStdio(cmd.Context(), sock, os.Stdin, g.stdout)
		},
	}
	cmd.Flags().StringVar(&sock, "socket", "", "the server's control socket (default: the default data dir's, as `moorage server` uses)")
	return cmd
}

// dialStdio copies in to the socket and the socket to out. The end of in
// closes the socket's write side (the server still answers what it got);
// the end of the socket's stream ends the command at once.
func dialStdio(ctx context.Context, sock string, in io.Reader, out io.Writer) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("%w at unix://%s: %v (is `moorage server` running on this host? give its socket with --socket, or in the client's address: ssh://host/path/to/moorage.sock)",
			client.ErrUnreachable, sock, unwrapOp(err))
	}
	uc := conn.(*net.UnixConn)
	defer uc.Close()
	sent := make(chan error, 1)
	received := make(chan error, 1)
	go func() {
		_, err := io.Copy(uc, in)
		if cerr := uc.CloseWrite(); err == nil {
			err = cerr
		}
		sent <- err
	}()
	go func() {
		_, err := io.Copy(out, uc)
		received <- err
	}()
	select {
	case err := <-sent:
		if err != nil {
			return fmt.Errorf("forward standard input to the server: %w", err)
		}
		select {
		case err = <-received:
		case <-ctx.Done():
			return nil
		}
		if err != nil {
			return fmt.Errorf("forward the server's answer to standard output: %w", err)
		}
		return nil
	case err := <-received:
		// The server closed (or standard output did): nothing more can flow
		// back, so do not wait for standard input to end.
		if err != nil {
			return fmt.Errorf("forward the server's answer to standard output: %w", err)
		}
		return nil
	case <-ctx.Done():
		return nil
	}
}

// unwrapOp drops net.OpError's "dial unix PATH:" prefix.
func unwrapOp(err error) error {
	if op, ok := err.(*net.OpError); ok {
		return op.Err
	}
	return err
}
