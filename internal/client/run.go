package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moorage/moorage/internal/api"
)

// RunOptions describe a one-off command.
type RunOptions struct {
	Service string
	Command []string
	TTY     bool
	// Size is the terminal's size at the start, and Resize its changes
	// (nil: none); both only with TTY.
	Size   api.TermSize
	Resize <-chan api.TermSize
	Stdin  io.Reader // nil: no input
	Stdout io.Writer
	Stderr io.Writer
}

// ErrRunFailed is returned when the command could not run at all.
var ErrRunFailed = errors.New("could not run the command")

// Run runs a one-off command in the app's active release and returns its
// exit code.
func (c *Client) Run(ctx context.Context, app string, o RunOptions) (int, error) {
	q := url.Values{}
	if o.Service != "" {
		q.Set("service", o.Service)
	}
	if o.TTY {
		q.Set("tty", "1")
		if o.Size.Cols > 0 && o.Size.Rows > 0 {
			q.Set("cols", strconv.Itoa(int(o.Size.Cols)))
			q.Set("rows", strconv.Itoa(int(o.Size.Rows)))
		}
	}
	for _, a := range o.Command {
		q.Add("arg", a)
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/run?"+q.Encode(), nil,
		http.Header{"Connection": {"Upgrade"}, "Upgrade": {api.UpgradeRun}})
	if err != nil {
		return -1, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
		return -1, fmt.Errorf("server did not start the command: %s", resp.Status)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return -1, errors.New("server answered the upgrade without a stream")
	}
	defer rwc.Close()
	fw := api.NewFrameWriter(rwc)
	if o.Stdin != nil {
		go func() {
			io.Copy(fw.Stream(api.FrameStdin), o.Stdin)
			fw.Write(api.FrameStdinEOF, nil)
		}()
	} else {
		fw.Write(api.FrameStdinEOF, nil)
	}
	if o.TTY && o.Resize != nil {
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case <-done:
					return
				case sz, ok := <-o.Resize:
					if !ok {
						return
					}
					if fw.Write(api.FrameResize, api.EncodeSize(sz)) != nil {
						return
					}
				}
			}
		}()
	}
	go func() {
		<-ctx.Done()
		rwc.Close() // the server kills the command when the stream closes
	}()
	for {
		typ, p, err := api.ReadFrame(rwc)
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			return -1, fmt.Errorf("lost the command's stream: %w", err)
		}
		switch typ {
		case api.FrameStdout:
			o.Stdout.Write(p)
		case api.FrameStderr:
			o.Stderr.Write(p)
		case api.FrameExit:
			if len(p) != 4 {
				return -1, api.ErrFrame
			}
			return int(int32(binary.BigEndian.Uint32(p))), nil
		case api.FrameError:
			return -1, fmt.Errorf("%w: %s", ErrRunFailed, p)
		}
	}
}
