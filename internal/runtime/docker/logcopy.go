package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime/logs"
)

// followLogs copies the container's output into its log file until the
// container stops (or the runtime closes). The returned channel is closed
// when it is done.
func (r *Runtime) followLogs(s *supervisor) <-chan struct{} {
	done := make(chan struct{})
	ok := r.life.Go(func() {
		defer close(done)
		for {
			err := r.copyLogs(r.ctx, s.cid, s.logf, s.base, true)
			if r.ctx.Err() != nil {
				return
			}
			if err != nil {
				r.log.Debug("follow logs", "instance", s.id, "err", err)
			}
			// The stream ends when the container stops; if it still runs,
			// the stream broke: resume after the last line written.
			ictx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
			c, ierr := r.cli.ContainerInspect(ictx, s.cid, client.ContainerInspectOptions{})
			cancel()
			if ierr != nil || c.Container.State == nil || !(c.Container.State.Running || c.Container.State.Paused) {
				return
			}
			select {
			case <-time.After(200 * time.Millisecond):
			case <-r.ctx.Done():
				return
			}
		}
	})
	if !ok {
		close(done)
	}
	return done
}

// waitLogs waits up to d for a follower to drain what a stopped container
// printed.
func (r *Runtime) waitLogs(done <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// copyLogs appends the container's output after the last line of its log
// (Docker's timestamps tell what was already copied).
func (r *Runtime) copyLogs(ctx context.Context, cid string, lf *logs.File, base string, follow bool) error {
	since := logs.LastTime(base)
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: follow}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	rc, err := r.cli.ContainerLogs(ctx, cid, opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	return DemuxLines(rc, func(stream string, t time.Time, text []byte) {
		if !since.IsZero() && !t.After(since) {
			return // copied before
		}
		for len(text) > logs.MaxLine {
			lf.WriteLine(t, stream, text[:logs.MaxLine])
			text = text[logs.MaxLine:]
		}
		lf.WriteLine(t, stream, text)
	})
}

// DemuxLines reads Docker's multiplexed log stream with timestamps (8-byte
// frame headers: stream, 0, 0, 0, big-endian size) and calls fn for each
// line with its stream and time. A line Docker split in parts (longer than
// its 16K buffer) is joined again.
func DemuxLines(r io.Reader, fn func(stream string, t time.Time, text []byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	type partial struct {
		t    time.Time
		text []byte
	}
	pending := map[string]*partial{}
	flush := func() {
		for stream, p := range pending {
			fn(stream, p.t, p.text)
		}
		clear(pending)
	}
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			flush()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			flush()
			return err
		}
		var stream string
		switch hdr[0] {
		case 1:
			stream = "stdout"
		case 2:
			stream = "stderr"
		case 3:
			return fmt.Errorf("docker logs: %s", bytes.TrimSpace(payload))
		default:
			continue
		}
		for len(payload) > 0 {
			seg := payload
			complete := false
			if i := bytes.IndexByte(payload, '\n'); i >= 0 {
				seg, payload, complete = payload[:i], payload[i+1:], true
			} else {
				payload = nil
			}
			t, text := splitTime(seg)
			p := pending[stream]
			if p == nil {
				p = &partial{t: t}
				if t.IsZero() {
					p.t = time.Now()
				}
			}
			p.text = append(p.text, text...)
			if !complete {
				pending[stream] = p
				continue
			}
			delete(pending, stream)
			text = bytes.TrimSuffix(p.text, []byte{'\r'})
			fn(stream, p.t, text)
		}
	}
}

// splitTime splits "<RFC3339Nano> text".
func splitTime(b []byte) (time.Time, []byte) {
	i := bytes.IndexByte(b, ' ')
	if i <= 0 {
		if t, err := time.Parse(time.RFC3339Nano, string(b)); err == nil {
			return t, nil
		}
		return time.Time{}, b
	}
	t, err := time.Parse(time.RFC3339Nano, string(b[:i]))
	if err != nil {
		return time.Time{}, b
	}
	return t, b[i+1:]
}
