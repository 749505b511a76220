package apiserver

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net/http"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/engine"
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
	go readInput(bufio.NewReader(brw), stdinW, cancel)
	code, err := s.Engine.RunOneOff(ctx, engine.RunRequest{
		App: app, Service: q.Get("service"), Command: args, TTY: q.Get("tty") == "1",
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

// readInput copies stdin frames into w; a closed connection cancels the
// command.
func readInput(r io.Reader, w *io.PipeWriter, cancel context.CancelFunc) {
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
		}
	}
}
