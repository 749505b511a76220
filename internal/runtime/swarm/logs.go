package swarm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/docker"
	"github.com/moorage/moorage/internal/runtime/logs"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// copyLogs starts copying the logs of a service (every task, on every
// node) into the instance's log file, unless that runs already.
func (r *Runtime) copyLogs(name, serviceID, app, id string) {
	r.followers.Start(&r.life, r.ctx, name, func(ctx context.Context) { r.copyLoop(ctx, serviceID, app, id) })
}

// stopCopy ends a service's log copy, once it has read what the service
// printed (a removed service's log stream ends by itself).
func (r *Runtime) stopCopy(name string) { r.followers.Stop(name, 3*time.Second) }

// copyLoop follows the service's logs from after the last line copied, and
// follows again when the stream ends while the service is still there
// (a manager restart, a task moved).
func (r *Runtime) copyLoop(ctx context.Context, serviceID, app, id string) {
	path := seam.LogPath(r.opts.DataDir, app, id)
	lf, err := logs.Open(path, r.opts.LogMaxSize, r.opts.LogMaxFiles)
	if err != nil {
		r.log.Warn("cannot open the log file", "instance", id, "err", err)
		return
	}
	defer lf.Close()
	for {
		err := r.copyOnce(ctx, serviceID, lf, path)
		if ctx.Err() != nil {
			return
		}
		if _, ierr := r.cli.ServiceInspect(ctx, serviceID, client.ServiceInspectOptions{}); isNotFound(ierr) {
			return
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			r.log.Debug("service logs ended", "instance", id, "err", err)
		}
		if sleep(ctx, time.Second) != nil {
			return
		}
	}
}

// copyOnce appends the service's output after the last line of the file
// (Docker's timestamps tell what was copied before).
func (r *Runtime) copyOnce(ctx context.Context, serviceID string, lf *logs.File, base string) error {
	since := logs.LastTime(base)
	opts := client.ServiceLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: true}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	rc, err := r.cli.ServiceLogs(ctx, serviceID, opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	return docker.DemuxLines(rc, func(stream string, t time.Time, text []byte) {
		if !since.IsZero() && !t.After(since) {
			return
		}
		for len(text) > logs.MaxLine {
			lf.WriteLine(t, stream, text[:logs.MaxLine])
			text = text[logs.MaxLine:]
		}
		lf.WriteLine(t, stream, text)
	})
}

// Logs calls fn for each matching line of instance id, oldest first. Logs
// stay readable after the service is removed. With Follow it keeps
// streaming until ctx is done or the service is removed.
func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions, fn func(runtime.LogLine) error) error {
	exists := func(ctx context.Context) bool {
		_, err := r.cli.ServiceInspect(ctx, r.names.Instance(id), client.ServiceInspectOptions{})
		return err == nil || !isNotFound(err)
	}
	return seam.ReadLogs(ctx, r.life.Check, r.opts.DataDir, id, opts, exists, r.ctx.Done(), fn)
}

// PruneLogs deletes app's log files of instances ret.Keep does not keep.
func (r *Runtime) PruneLogs(ctx context.Context, app string, ret runtime.LogRetention) (int64, error) {
	return seam.PruneLogs(ctx, r.life.Check, r.opts.DataDir, app, ret)
}
