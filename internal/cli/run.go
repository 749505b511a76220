package cli

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

func newRunCmd(g *globals) *cobra.Command {
	var noTTY bool
	cmd := &cobra.Command{
		Use:   "run [SERVICE] -- COMMAND [ARGS...]",
		Short: "Run a one-off command in the active release, with its env, secrets and volumes",
		Long: `Run a one-off command in the app's active release: its code, its config and
secrets, its volumes (those of SERVICE when given, else every volume, like a
release task). The output streams back, and moorage exits with the command's
exit code. With a terminal on both ends the command gets one (shells, REPLs).`,
		Example: `  moorage run -- ./manage.py createsuperuser
  moorage run web -- sh -c 'env | sort'
  moorage run -- ./hello migrate`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := g.appName()
			if err != nil {
				return err
			}
			o := client.RunOptions{Stdout: g.stdout, Stderr: g.stderr, Stdin: os.Stdin}
			// Flags stop at the first argument (so the command's own flags
			// are left alone), which leaves a "--" in args.
			dash := cmd.ArgsLenAtDash()
			for i, a := range args {
				if a == "--" {
					dash, args = i, append(args[:i:i], args[i+1:]...)
					break
				}
			}
			switch dash {
			case -1, 0:
				o.Command = args
			case 1:
				o.Service, o.Command = args[0], args[1:]
			default:
				return fmt.Errorf("give at most one SERVICE before --: moorage run [SERVICE] -- COMMAND")
			}
			if len(o.Command) == 0 {
				return fmt.Errorf("no command given: moorage run [SERVICE] -- COMMAND [ARGS...]")
			}
			in := int(os.Stdin.Fd())
			if !noTTY && term.IsTerminal(in) && isTTY(g.stdout) {
				o.TTY = true
				old, err := term.MakeRaw(in)
				if err == nil {
					defer term.Restore(in, old)
				}
				var stop func()
				o.Size, o.Resize, stop = followSize(in)
				defer stop()
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			code, err := c.Run(cmd.Context(), app, o)
			if err != nil {
				if errors.Is(err, client.ErrRunFailed) {
					return &exitError{code: 125, err: err}
				}
				return err
			}
			switch {
			case code < 0: // killed by a signal
				return &exitError{code: 137, err: errors.New("the command was killed")}
			case code != 0:
				return &exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&noTTY, "no-tty", "T", false, "never allocate a terminal")
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// followSize is the size of the terminal fd, and its changes (on SIGWINCH)
// until stop is called: a full-screen program (an editor, a pager, a
// REPL's line editing) in the one-off draws for the terminal it is shown
// in.
func followSize(fd int) (api.TermSize, <-chan api.TermSize, func()) {
	size := func() api.TermSize {
		w, h, err := term.GetSize(fd)
		if err != nil || w <= 0 || h <= 0 || w > math.MaxUint16 || h > math.MaxUint16 {
			return api.TermSize{}
		}
		return api.TermSize{Cols: uint16(w), Rows: uint16(h)}
	}
	changes := make(chan api.TermSize, 1)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-sig:
				select {
				case <-changes: // not sent yet: the new size replaces it
				default:
				}
				changes <- size()
			}
		}
	}()
	return size(), changes, func() {
		signal.Stop(sig)
		close(done)
	}
}
