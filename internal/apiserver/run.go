package apiserver

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/runtime"
)

// run upgrades the connection to a frame stream and runs a one-off command
// (`moorage run`): stdin flows in, stdout and stderr flow out, and the last
// frame carries the exit code. The command is killed when the client goes
// away.
func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	app := r.PathValue("app")
	if r.Header.Get("Upgrade") != api.UpgradeRun {
		writeError(w, http.StatusBadRequest, "bad_request", "run needs a connection upgrade to "+api.UpgradeRun)
		return
	}
	a, err := s.Engine.Store().GetApp(r.Context(), app)
	if err != nil {
		writeErr(w, appErr(r, err))
		return
	}
	if a.Current == 0 {
		writeError(w, http.StatusConflict, "not_deployed", app+" has no active release; deploy it first")
		return
	}
	args := q["arg"]
	if len(args) == 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "no command given: moorage run [SERVICE] -- COMMAND [ARGS...]")
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "cannot upgrade the connection: "+err.Error())
		return
	}
	defer conn.Close()
	io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+api.UpgradeRun+"\r\n\r\n")

	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	fw := api.NewFrameWriter(conn)
	stdinR, stdinW := io.Pipe()
	resize := make(chan runtime.TermSize, 1)
	go readInput(bufio.NewReader(brw), stdinW, resize, cancel)
	code, err := s.Engine.RunOneOff(ctx, engine.RunRequest{
		App: app, Service: q.Get("service"), Command: args, TTY: q.Get("tty") == "1",
		Size: querySize(q), Resize: resize,
		Stdin: stdinR, Stdout: fw.Stream(api.FrameStdout), Stderr: fw.Stream(api.FrameStderr), Owner: owner(r),
	})
	stdinR.Close()
	if err != nil {
		fw.Write(api.FrameError, []byte(err.Error()))
		return
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	fw.Write(api.FrameExit, b[:])
}

// querySize is the terminal's size at the start, from the request's
// cols and rows (zero when absent or not a size).
func querySize(q url.Values) runtime.TermSize {
	cols, err1 := strconv.ParseUint(q.Get("cols"), 10, 16)
	rows, err2 := strconv.ParseUint(q.Get("rows"), 10, 16)
	if err1 != nil || err2 != nil {
		return runtime.TermSize{}
	}
	return runtime.TermSize{Cols: uint16(cols), Rows: uint16(rows)}
}

// readInput copies stdin frames into w and passes resize frames on,
// keeping only the latest size when the command has not taken the one
// before; a closed connection cancels the command.
func readInput(r io.Reader, w *io.PipeWriter, resize chan runtime.TermSize, cancel context.CancelFunc) {
	for {
		typ, p, err := api.ReadFrame(r)
		if err != nil {
			w.Close()
			cancel()
			return
		}
		switch typ {
		case api.FrameStdin:
			if _, err := w.Write(p); err != nil {
				// The command does not read its input any more; drain.
				continue
			}
		case api.FrameStdinEOF:
			w.Close()
		case api.FrameResize:
			sz, err := api.DecodeSize(p)
			if err != nil {
				continue
			}
			select {
			case <-resize: // a size not taken yet: the new one replaces it
			default:
			}
			resize <- runtime.TermSize{Cols: sz.Cols, Rows: sz.Rows}
		}
	}
}
